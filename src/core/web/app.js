// SPDX-License-Identifier: Apache-2.0
// The review app cortex-core serves at /: sign-in with a key (exchanged for
// a session cookie; the key is never kept), then pages drawn from the hash
// (#/queue, #/draft/ID, #/search, #/item/ID, #/artifacts, #/artifact/ID,
// #/audit, #/team, #/keys) out of the JSON endpoints under /v1.
//
// Safety: every piece of data reaches the page through createElement,
// createTextNode, textContent and setAttribute of fixed attribute names;
// never innerHTML or its kin. Markdown bodies go through md(), which builds
// nodes the same way and lets links through only for http:, https:,
// mailto: and '#' targets. The Content-Security-Policy (script-src 'self',
// style-src 'self') is the second wall. The CSRF token of the session lives
// in a variable of this closure only, and goes out as X-CSRF-Token on every
// POST and DELETE.
(function () {
  "use strict";

  // --- state ---------------------------------------------------------------
  let session = null;      // {team, role, principal, key_id, csrf, expires_at}
  let renderSeq = 0;       // a newer render makes older async ones drop their output
  let flash = null;        // an outcome to show atop the next page drawn: [kind, text]
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const signoutBtn = document.getElementById("signout");

  // --- DOM helpers ---------------------------------------------------------
  // h("a", {href: "#/x", class: "c"}, "text", node, [more]) builds an element.
  // Attribute values are set with setAttribute (strings, never parsed as
  // markup); children are nodes or text; null/false children are skipped.
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "text") el.textContent = String(v);
        else if (k === "on") for (const ev of Object.keys(v)) el.addEventListener(ev, v[ev]);
        else if (k === "href") {
          const safe = safeHref(String(v));
          if (safe !== null) el.setAttribute("href", safe);
        } else if (/^on/i.test(k) || k === "style" || k === "src" || k === "srcdoc") {
          throw new Error("h: attribute not allowed: " + k);
        } else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { for (const x of c) append(el, x); return; }
    if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  function msg(kind, text) {
    return h("p", {class: "msg " + kind, role: kind === "error" ? "alert" : "status"}, text);
  }

  // A link target is kept only when it is http(s), mailto, or an in-app
  // '#' link; anything else (javascript:, data:, vbscript:, file:, protocol-
  // relative //host, relative paths) gives null and the caller shows text.
  function safeHref(raw) {
    const s = String(raw).trim();
    if (/[\u0000-\u001f\u007f\s]/.test(s)) return null;
    if (s.startsWith("#")) return s;
    let u;
    try { u = new URL(s); } catch (e) { return null; }
    if (u.protocol === "http:" || u.protocol === "https:" || u.protocol === "mailto:")
      return u.href;
    return null;
  }

  // --- formatting ----------------------------------------------------------
  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    if (s < 86400) return (s / 3600).toFixed(s < 36000 ? 1 : 0) + " h";
    return (s / 86400).toFixed(s < 864000 ? 1 : 0) + " d";
  }
  function age(ts) {
    const t = Date.parse(ts);
    return isNaN(t) ? "–" : dur((Date.now() - t) / 1000);
  }
  function when(ts) {
    if (!ts) return "–";
    const t = Date.parse(ts);
    if (isNaN(t)) return String(ts);
    return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
  }
  function timeEl(ts) {
    return h("time", {datetime: ts || null}, when(ts));
  }
  function badge(text, extra) {
    return h("span", {class: "badge " + (extra || text || "")}, text || "–");
  }
  function bytes(n) {
    if (typeof n !== "number") return "–";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }
  // What names an item: its title, else the start of its body (observations
  // often have no title), else its id.
  function label(it) {
    if (it.title) return it.title;
    const b = String(it.body || it.snippet || "").replace(/\s+/g, " ").trim();
    if (b) return b.length > 80 ? b.slice(0, 77) + "…" : b;
    return it.id || "(untitled)";
  }
  function canDecide() { return !!session && (session.role === "reviewer" || session.role === "admin"); }

  // --- the API -------------------------------------------------------------
  // api("GET", "/v1/...") -> {status, data}; a 401 on any call but the
  // session's own means the session ended: back to sign-in.
  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD" && session && session.csrf)
      headers["X-CSRF-Token"] = session.csrf;
    let res;
    try {
      res = await fetch(path, {method, headers, credentials: "same-origin", cache: "no-store",
                               body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      return {status: 0, data: {error: "network", message: "The core did not answer: " + e.message}};
    }
    let data = null;
    const type = res.headers.get("Content-Type") || "";
    if (res.status !== 204) {
      if (type.includes("json")) {
        try { data = await res.json(); } catch (e) { data = null; }
      } else {
        data = await res.text();
      }
    }
    if (res.status === 401 && path !== "/v1/session" && session) {
      session = null;
      showSignedOut("Your session ended. Sign in again.");
    }
    return {status: res.status, data};
  }
  // The core's error body is {"error": {"code", "message"}}.
  function errText(r, what) {
    const d = r.data && typeof r.data === "object" ? r.data : {};
    const e = d.error && typeof d.error === "object" ? d.error : {code: d.error, message: d.message};
    const why = e.message || e.code || "";
    if (r.status === 403) return what + ": not allowed (403): " + (why || "forbidden");
    if (r.status === 404) return what + ": not found.";
    return what + " failed (" + (r.status || "no answer") + ")" + (why ? ": " + why : ".");
  }
  function qs(params) {
    const parts = [];
    for (const k of Object.keys(params)) {
      const v = params[k];
      if (v === undefined || v === null || v === "") continue;
      parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  // --- markdown ------------------------------------------------------------
  // A small markdown subset drawn as DOM nodes: headings, paragraphs, bullet
  // and numbered lists, block quotes, fenced code, inline code, **strong**,
  // *em*, [links](url). Raw HTML in the text stays text. Images are shown as
  // their alt text and address, never loaded.
  function md(src) {
    const out = document.createDocumentFragment();
    const lines = String(src || "").replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    let para = [];
    const flush = () => {
      if (para.length) { out.appendChild(h("p", null, inline(para.join(" ")))); para = []; }
    };
    while (i < lines.length) { // every branch consumes at least one line
      const line = lines[i];
      let m;
      if ((m = /^\s*(```+|~~~+)\s*([\w+-]*)\s*$/.exec(line))) {
        flush();
        const fence = m[1];
        const body = [];
        i++;
        while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
        i++; // the closing fence (or the end)
        const code = h("code", null, body.join("\n"));
        if (m[2]) code.setAttribute("data-lang", m[2]);
        out.appendChild(h("pre", null, code));
        continue;
      }
      if ((m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line))) {
        flush();
        const level = Math.min(6, m[1].length + 1); // the page's title is the h1
        out.appendChild(h("h" + level, null, inline(m[2])));
        i++;
        continue;
      }
      if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
        flush();
        const ordered = /^\s*\d+[.)]\s+/.test(line);
        const list = h(ordered ? "ol" : "ul");
        const item = ordered ? /^\s*\d+[.)]\s+(.*)$/ : /^\s*[-*+]\s+(.*)$/;
        while (i < lines.length && item.test(lines[i])) {
          let text = item.exec(lines[i])[1];
          i++;
          // continuation lines (indented, not a new item)
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*+]|\d+[.)])\s+/.test(lines[i]))
            text += " " + lines[i++].trim();
          list.appendChild(h("li", null, inline(text)));
        }
        out.appendChild(list);
        continue;
      }
      if (/^\s*>/.test(line)) {
        flush();
        const quoted = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
        out.appendChild(h("blockquote", null, h("p", null, inline(quoted.join(" ")))));
        continue;
      }
      if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { flush(); out.appendChild(h("hr")); i++; continue; }
      if (line.trim() === "") { flush(); i++; continue; }
      para.push(line.trim());
      i++;
    }
    flush();
    return out;
  }

  // Inline markdown to an array of nodes (strings become text nodes).
  // Emphasis opens only at the start or after a space or opening bracket,
  // and closes before a space, punctuation or the end (so identifiers such
  // as window.__x or snake_case stay as they are). Delimited spans never
  // hold their delimiter, so a scan stops at the next one: hostile text of
  // many unmatched delimiters costs linear time, not quadratic. A paragraph
  // past MAX_INLINE characters is shown as plain text.
  const MAX_INLINE = 20000;
  const OPEN = "(?<=^|[\\s(\\[\"'])", CLOSE = "(?=$|[\\s).,;:!?\\]\"'])";
  const INLINE = new RegExp("`([^`]+)`|!\\[([^\\[\\]]*)\\]\\(([^()\\s]*)\\)|\\[([^\\[\\]]+)\\]\\(([^()\\s]*)\\)" +
    "|" + OPEN + "\\*\\*([^*\\s](?:[^*]*?[^*\\s])?)\\*\\*" + CLOSE + "|" + OPEN + "__([^_\\s](?:[^_]*?[^_\\s])?)__" + CLOSE +
    "|" + OPEN + "\\*([^*\\s](?:[^*]*?[^*\\s])?)\\*" + CLOSE + "|" + OPEN + "_([^_\\s](?:[^_]*?[^_\\s])?)_" + CLOSE +
    "|<(https?:\\/\\/[^<>\\s]+)>", "g");
  function inline(text, depth) {
    depth = depth || 0;
    if (text.length > MAX_INLINE) return [text];
    const nodes = [];
    let last = 0;
    let m;
    const re = new RegExp(INLINE.source, "g");
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) nodes.push(text.slice(last, m.index));
      if (m[1] !== undefined) nodes.push(h("code", null, m[1]));
      else if (m[3] !== undefined) nodes.push("[image: " + (m[2] || "") + " (" + m[3] + ")]");
      else if (m[4] !== undefined) nodes.push(link(m[4], m[5], depth));
      else if (m[6] !== undefined || m[7] !== undefined)
        nodes.push(h("strong", null, depth < 4 ? inline(m[6] !== undefined ? m[6] : m[7], depth + 1) : m[6] || m[7]));
      else if (m[8] !== undefined || m[9] !== undefined)
        nodes.push(h("em", null, depth < 4 ? inline(m[8] !== undefined ? m[8] : m[9], depth + 1) : m[8] || m[9]));
      else if (m[10] !== undefined) nodes.push(link(m[10], m[10], depth));
      last = re.lastIndex;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < text.length) nodes.push(text.slice(last));
    return nodes;
  }
  function link(label, target, depth) {
    const safe = safeHref(target);
    if (safe === null) return label + " (" + target + ")"; // shown, never followed
    const a = h("a", {href: safe, rel: "noopener noreferrer nofollow"},
                depth < 4 ? inline(label, depth + 1) : label);
    return a;
  }

  // Marks the query's words in a plain-text snippet with <mark>, as text.
  function highlight(snippet, q) {
    const words = String(q || "").toLowerCase().split(/[^\p{L}\p{N}_]+/u).filter((w) => w.length > 1);
    const s = String(snippet || "");
    if (!words.length) return [s];
    const esc = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    const re = new RegExp("(" + esc.join("|") + ")", "giu");
    const out = [];
    let last = 0, m, n = 0;
    while ((m = re.exec(s)) !== null && n++ < 200) {
      if (m.index > last) out.push(s.slice(last, m.index));
      out.push(h("mark", null, m[0]));
      last = re.lastIndex;
    }
    out.push(s.slice(last));
    return out;
  }

  // --- sign-in and session -------------------------------------------------
  function setChrome() {
    const signed = !!session;
    nav.hidden = !signed;
    signoutBtn.hidden = !signed;
    document.getElementById("nav-keys").hidden = !(signed && session.role === "admin");
    clear(who);
    if (signed)
      append(who, [session.principal || "?", " · ", session.role || "?", " · team ", session.team || "?"]);
  }

  function showSignedOut(note) {
    session = null;
    setChrome();
    renderSeq++;
    clear(main);
    main.removeAttribute("aria-busy");
    main.setAttribute("data-route", "signin");
    document.title = "Sign in · Cortex review";
    const input = h("input", {id: "key", name: "key", type: "password", autocomplete: "off",
                              spellcheck: "false", required: true, "aria-describedby": "key-help"});
    const status = h("div", {id: "signin-status"});
    const form = h("form", {class: "signin", "aria-labelledby": "signin-title"},
      h("h1", {id: "signin-title"}, "Sign in"),
      note ? msg("warn", note) : null,
      h("div", {class: "field"},
        h("label", {for: "key"}, "API key"),
        input,
        h("span", {id: "key-help", class: "muted"},
          "A reviewer or admin key decides on drafts; an agent key reads. The key is exchanged for a session and is not kept in the browser.")),
      h("div", {class: "actions"}, h("button", {type: "submit"}, "Sign in")),
      status);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = input.value.trim();
      input.value = "";
      clear(status);
      if (!key) { status.appendChild(msg("error", "Enter an API key.")); return; }
      const r = await api("POST", "/v1/session", {key});
      if (r.status === 200 && r.data && r.data.csrf) {
        session = r.data;
        setChrome();
        if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/queue";
        else route();
      } else if (r.status === 401) {
        status.appendChild(msg("error", "That key was not accepted (wrong, unknown or revoked)."));
        input.focus();
      } else {
        status.appendChild(msg("error", errText(r, "Sign-in")));
      }
    });
    main.appendChild(form);
    input.focus();
  }

  async function signOut() {
    const r = await api("DELETE", "/v1/session");
    session = null;
    showSignedOut(r.status === 204 || r.status === 200 ? "You are signed out." : errText(r, "Sign-out"));
  }

  // --- routing -------------------------------------------------------------
  const PAGES = {
    queue: pageQueue, draft: pageItem, search: pageSearch, item: pageItem,
    artifacts: pageArtifacts, artifact: pageArtifact, audit: pageAudit, team: pageTeam,
    keys: pageKeys,
  };
  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    const qi = raw.indexOf("?");
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const params = new URLSearchParams(qi < 0 ? "" : raw.slice(qi + 1));
    const parts = path.split("/").filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    return {page: parts[0] || "queue", arg: parts[1] || null, params};
  }
  function route() {
    if (!session) { showSignedOut(); return; }
    const r = parseHash();
    const fn = PAGES[r.page];
    for (const a of nav.querySelectorAll("a")) {
      const target = a.getAttribute("href").slice(2);
      const on = target === r.page || (r.page === "draft" && target === "queue") ||
                 (r.page === "item" && target === "search") || (r.page === "artifact" && target === "artifacts");
      if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const seq = ++renderSeq;
    const view = h("div");
    // aria-busy while a page loads; data-route names the page drawn (tests wait on both)
    main.setAttribute("aria-busy", "true");
    const drawn = location.hash;
    const draw = (node) => {
      if (seq !== renderSeq) return;
      clear(main);
      if (flash) { main.appendChild(msg(flash[0], flash[1])); flash = null; }
      main.appendChild(node);
      main.removeAttribute("aria-busy");
      main.setAttribute("data-route", drawn);
    };
    if (!fn) {
      draw(h("div", null, h("h1", null, "Not found"), h("p", null, "There is no such page. ", h("a", {href: "#/queue"}, "Go to the review queue."))));
      return;
    }
    Promise.resolve(fn(view, r)).then(() => draw(view), (e) => {
      draw(h("div", null, h("h1", null, "Something went wrong"), msg("error", String(e && e.message || e))));
    });
  }
  function title(t) { document.title = t + " · Cortex review"; }

  // --- pages ---------------------------------------------------------------
  // A table whose cells carry their column's name (data-label): on a
  // phone's width the rows stack as cards, each cell labelled (app.css).
  function table(caption, heads, rows) {
    const names = heads.map((x) => (x.endsWith("|n") ? x.slice(0, -2) : x));
    for (const tr of rows) {
      const cells = tr.children;
      for (let i = 0; i < cells.length && i < names.length; i++) cells[i].setAttribute("data-label", names[i]);
    }
    const t = h("table", {class: "stack"},
      caption ? h("caption", {class: "sr-only"}, caption) : null,
      h("thead", null, h("tr", null, heads.map((x) => {
        const num = x.endsWith("|n"); // a numeric column: right-aligned
        return h("th", {scope: "col", class: num ? "num" : null}, num ? x.slice(0, -2) : x);
      }))),
      h("tbody", null, rows));
    return h("div", {class: "scroll", tabindex: "0", role: "region", "aria-label": caption || "table"}, t);
  }

  async function pageQueue(view, r) {
    title("Review queue");
    const sub = r.params.get("subcortex") || "";
    const res = await api("GET", "/v1/review/queue" + qs({subcortex: sub, limit: 200}));
    view.appendChild(h("h1", null, "Review queue"));
    if (res.status !== 200) { view.appendChild(msg("error", errText(res, "Loading the queue"))); return; }
    const drafts = res.data.drafts || [];
    const subs = res.data.subcortices || [];
    const select = h("select", {id: "f-subcortex", name: "subcortex"},
      h("option", {value: ""}, "All subcortices"),
      subs.map((s) => h("option", {value: s, selected: s === sub}, s)));
    if (sub && subs.indexOf(sub) < 0) select.appendChild(h("option", {value: sub, selected: true}, sub));
    select.addEventListener("change", () => { location.hash = "#/queue" + qs({subcortex: select.value}); });
    view.appendChild(h("div", {class: "row"},
      h("div", {class: "field"}, h("label", {for: "f-subcortex"}, "Subcortex"), select)));
    const total = typeof res.data.total === "number" ? res.data.total : drafts.length;
    view.appendChild(h("p", {class: "muted", role: "status"},
      total === 1 ? "1 draft waiting for review, oldest first." : total + " drafts waiting for review, oldest first."));
    if (!drafts.length) { view.appendChild(h("p", null, "Nothing waits for review.")); return; }
    view.appendChild(table("Drafts waiting for review",
      ["Title", "Author", "Agent", "Subcortex", "Age", "Evidence|n"],
      drafts.map((d) => h("tr", null,
        h("td", null, h("a", {href: "#/draft/" + encodeURIComponent(d.id)}, d.title || "(untitled)")),
        h("td", null, d.author || "–"),
        h("td", null, d.agent || "–"),
        h("td", null, d.subcortex || "general"),
        h("td", null, h("time", {datetime: d.created_at || null, title: when(d.created_at)}, age(d.created_at))),
        h("td", {class: "num"}, String(d.evidence_count !== undefined ? d.evidence_count : (d.evidence || []).length))))));
  }

  function itemMeta(it) {
    return h("ul", {class: "meta"},
      h("li", null, badge(it.kind, "kind"), " ", badge(it.status)),
      h("li", null, "Subcortex ", h("b", null, it.subcortex || "general")),
      h("li", null, "Author ", h("b", null, it.author || "–")),
      it.agent ? h("li", null, "Agent ", h("b", null, it.agent)) : null,
      h("li", null, "Created ", timeEl(it.created_at)),
      it.updated_at && it.updated_at !== it.created_at ? h("li", null, "Updated ", timeEl(it.updated_at)) : null,
      (it.tags || []).length ? h("li", null, "Tags ", h("b", null, it.tags.join(", "))) : null);
  }

  function filesOf(it) {
    const prov = it.provenance && Array.isArray(it.provenance.files) ? it.provenance.files.map((f) => f && f.path).filter(Boolean) : [];
    const files = Array.isArray(it.files) ? it.files : [];
    return Array.from(new Set(files.concat(prov)));
  }

  function evidenceCard(ev) {
    if (ev.missing) {
      return h("li", {class: "card"}, h("h3", null, "Missing evidence"),
        h("p", {class: "muted"}, "The item " + ev.id + " is not in this team's feed (not synced, private, or forgotten)."));
    }
    const stalePaths = ev.stale_paths || [];
    const files = filesOf(ev);
    const body = ev.body || "";
    const card = h("li", {class: "card"},
      h("h3", null, h("a", {href: "#/item/" + encodeURIComponent(ev.id)}, label(ev)),
        " ", ev.stale ? badge("stale", "stale") : null),
      h("p", {class: "muted"}, (ev.kind || "observation") + " by " + (ev.author || "–") +
        (ev.agent ? " via " + ev.agent : "") + ", " + when(ev.created_at)),
      h("div", {class: "body"}, md(body.length > 4000 ? body.slice(0, 4000) + " …" : body)));
    if (files.length) {
      card.appendChild(h("ul", {class: "files", "aria-label": "Files"}, files.map((f) =>
        h("li", null, f, stalePaths.indexOf(f) >= 0 ? [" ", badge("changed since", "stale")] : null))));
    }
    if (ev.stale && stalePaths.length)
      card.appendChild(h("p", {class: "msg warn"}, "Stale: newer items record other contents of " + stalePaths.join(", ") + "."));
    return card;
  }

  function decisionForm(it, onDone) {
    const note = h("textarea", {id: "note", name: "note", rows: "4", maxlength: "8192",
                                "aria-describedby": "note-help"});
    const status = h("div", {id: "decision-status", "aria-live": "polite"});
    const buttons = [];
    const decide = async (decision, label) => {
      clear(status);
      const text = note.value.trim();
      if (decision !== "approve" && !text) {
        status.appendChild(msg("error", label + " needs a note saying why."));
        note.focus();
        return;
      }
      for (const b of buttons) b.disabled = true;
      const body = {decision};
      if (text) body.note = text;
      const r = await api("POST", "/v1/drafts/" + encodeURIComponent(it.id) + "/decision", body);
      for (const b of buttons) b.disabled = false;
      if (r.status === 200) {
        flash = ["ok", decision === "approve" ? "Approved: the draft is canon now." :
          decision === "reject" ? "Rejected." : "Changes requested."];
        onDone(r.data);
      } else {
        status.appendChild(msg("error", errText(r, label)));
      }
    };
    const mk = (label, decision, cls) => {
      const b = h("button", {type: "button", class: cls || null}, label);
      b.addEventListener("click", () => decide(decision, label));
      buttons.push(b);
      return b;
    };
    return h("section", {"aria-labelledby": "decide-title"},
      h("h2", {id: "decide-title"}, "Decision"),
      h("div", {class: "field"},
        h("label", {for: "note"}, "Note"), note,
        h("span", {id: "note-help", class: "muted"}, "Optional for Approve; Reject and Request changes need one.")),
      h("div", {class: "actions"}, mk("Approve", "approve"), mk("Reject", "reject", "danger"),
        mk("Request changes", "changes_requested", "plain")),
      status);
  }

  async function pageItem(view, r) {
    const id = r.arg || "";
    const res = await api("GET", "/v1/items/" + encodeURIComponent(id));
    if (res.status !== 200 || !res.data || !res.data.item) {
      title("Not found");
      view.appendChild(h("h1", null, res.status === 404 ? "Not found" : "Cannot show this item"));
      view.appendChild(msg("error", res.status === 404 ? "There is no item " + id + " in your team." : errText(res, "Loading the item")));
      return;
    }
    const it = res.data.item;
    title(label(it));
    view.appendChild(h("h1", {id: "item-title"}, label(it)));
    view.appendChild(itemMeta(it));
    if (it.review) {
      const rv = it.review;
      view.appendChild(msg(rv.decision === "approve" ? "ok" : "warn",
        "Decided: " + rv.decision + (rv.reviewer ? " by " + rv.reviewer : "") + (rv.at ? " at " + when(rv.at) : "") +
        (rv.note ? ". Note: " + rv.note : rv.reason ? ". Reason: " + rv.reason : "")));
    }
    view.appendChild(h("section", {"aria-labelledby": "body-title"},
      h("h2", {id: "body-title"}, "Body"),
      h("div", {class: "body"}, md(it.body || ""))));
    const files = filesOf(it);
    if (files.length)
      view.appendChild(h("section", {"aria-labelledby": "files-title"}, h("h2", {id: "files-title"}, "Files"),
        h("ul", {class: "files"}, files.map((f) => h("li", null, f)))));

    if (it.kind === "artifact")
      view.appendChild(h("p", null, h("a", {href: "#/artifact/" + encodeURIComponent(it.id)}, "Versions and diffs of this artifact")));

    const evidence = res.data.evidence || [];
    view.appendChild(h("section", {"aria-labelledby": "ev-title"},
      h("h2", {id: "ev-title"}, "Evidence (" + evidence.length + ")"),
      evidence.length ? h("ul", {class: "cards"}, evidence.map(evidenceCard)) : h("p", {class: "muted"}, "No evidence cited.")));

    const comments = res.data.comments || [];
    view.appendChild(h("section", {"aria-labelledby": "cm-title"},
      h("h2", {id: "cm-title"}, "Comments (" + comments.length + ")"),
      comments.length ? h("ul", {class: "cards"}, comments.map((c) => h("li", {class: "card"},
        h("p", {class: "muted"}, (c.author || "–") + ", " + when(c.created_at)),
        h("div", {class: "body"}, md(c.body || c.title || ""))))) : h("p", {class: "muted"}, "No comments.")));

    // the decision comes after the evidence and comments a reviewer reads first
    const pending = it.kind === "draft" && it.status === "pending";
    if (pending) {
      if (canDecide()) {
        view.appendChild(decisionForm(it, () => route()));
      } else {
        view.appendChild(msg("warn", "You are signed in with " + (session.role === "agent" ? "an agent" : "a " + session.role) +
          " key: it can read drafts but not decide on them. Sign in with a reviewer key to approve or reject."));
      }
    }

    const hist = res.data.history || [];
    view.appendChild(h("section", {"aria-labelledby": "hist-title"},
      h("h2", {id: "hist-title"}, "History"),
      hist.length ? table("History of this item", ["#", "When", "Who", "What", "Detail"],
        hist.map((e) => h("tr", null, h("td", null, String(e.n)), h("td", null, timeEl(e.at)),
          h("td", null, e.actor || "–"), h("td", null, e.action || "–"), h("td", null, detailText(e.detail)))))
        : h("p", {class: "muted"}, "No decisions or accepts recorded yet.")));
  }

  function detailText(d) {
    if (d === null || d === undefined) return "";
    if (typeof d !== "object") return String(d);
    const parts = [];
    for (const k of Object.keys(d)) {
      const v = d[k];
      parts.push(k + "=" + (typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
    return parts.join(", ");
  }

  const KINDS = ["thread", "draft", "observation", "artifact", "comment"];
  const STATUSES = ["canon", "pending", "approved", "rejected", "changes_requested", "recorded", "published", "accepted"];

  async function pageSearch(view, r) {
    title("Search");
    const p = r.params;
    const q = p.get("q") || "", kind = p.get("kind") || "", sub = p.get("subcortex") || "", st = p.get("status") || "";
    view.appendChild(h("h1", null, "Canon and search"));
    const input = h("input", {id: "q", name: "q", type: "search", value: q, maxlength: "256", autocomplete: "off"});
    const sel = (id, label, opts, cur) => h("div", {class: "field"}, h("label", {for: id}, label),
      h("select", {id, name: id.slice(2)}, h("option", {value: ""}, "Any"), opts.map((o) => h("option", {value: o, selected: o === cur}, o))));
    const subIn = h("input", {id: "f-subcortex", name: "subcortex", type: "text", value: sub, maxlength: "64", size: "12"});
    const form = h("form", {role: "search", "aria-label": "Search the team's items"},
      h("div", {class: "row"},
        h("div", {class: "field"}, h("label", {for: "q"}, "Search"), input),
        sel("f-kind", "Kind", KINDS, kind),
        sel("f-status", "Status", STATUSES, st),
        h("div", {class: "field"}, h("label", {for: "f-subcortex"}, "Subcortex"), subIn),
        h("button", {type: "submit"}, "Find")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      location.hash = "#/search" + qs({q: String(f.get("q") || "").trim(), kind: f.get("kind"), subcortex: String(f.get("subcortex") || "").trim(), status: f.get("status")});
    });
    view.appendChild(form);
    if (!q && !kind && !sub && !st) {
      view.appendChild(h("p", {class: "muted"}, "Search the team's threads (canon first), artifacts, drafts and observations. ",
        h("a", {href: "#/search?kind=thread"}, "List the canon threads.")));
      return;
    }
    const res = await api("GET", "/v1/search" + qs({q, kind, subcortex: sub, status: st, limit: 50}));
    if (res.status !== 200) { view.appendChild(msg("error", errText(res, "Searching"))); return; }
    const results = res.data.results || [];
    const total = typeof res.data.total === "number" ? res.data.total : results.length;
    view.appendChild(h("p", {role: "status", class: "muted", id: "search-count"},
      total === 1 ? "1 result." : total + " results." + (total > results.length ? " Showing " + results.length + "." : "")));
    if (!results.length) return;
    view.appendChild(h("ol", {class: "cards", "aria-label": "Results"}, results.map((x) => h("li", {class: "card"},
      h("h2", {class: "h3"}, h("a", {href: (x.kind === "draft" && x.status === "pending" ? "#/draft/" : x.kind === "artifact" ? "#/artifact/" : "#/item/") + encodeURIComponent(x.id)}, label(x))),
      h("p", {class: "meta"}, badge(x.kind, "kind"), badge(x.status), " ", x.subcortex || "general", " · ",
        x.author || "–", x.agent ? " via " + x.agent : "", " · ", when(x.updated_at)),
      x.snippet ? h("p", null, highlight(x.snippet, q)) : null))));
  }

  async function pageArtifacts(view) {
    title("Artifacts");
    view.appendChild(h("h1", null, "Artifacts"));
    const res = await api("GET", "/v1/artifacts" + qs({limit: 100}));
    if (res.status !== 200) { view.appendChild(msg("error", errText(res, "Loading artifacts"))); return; }
    const arts = res.data.artifacts || [];
    if (!arts.length) { view.appendChild(h("p", null, "No artifacts yet.")); return; }
    view.appendChild(table("Artifacts", ["Title", "Status", "Versions|n", "Latest", "Updated"],
      arts.map((a) => {
        const vs = a.versions || [];
        const last = vs[vs.length - 1] || {};
        return h("tr", null,
          h("td", null, h("a", {href: "#/artifact/" + encodeURIComponent(a.id)}, a.title || "(untitled)")),
          h("td", null, badge(a.status)), h("td", {class: "num"}, String(vs.length)),
          h("td", null, last.version ? "v" + last.version + " (" + last.status + ", " + bytes(last.size) + ")" : "–"),
          h("td", null, timeEl(a.updated_at)));
      })));
  }

  // Line diff of a and b (arrays of lines) by longest common subsequence;
  // bounded: past 2000 lines a side it says so instead.
  function lineDiff(a, b) {
    if (a.length > 2000 || b.length > 2000) return null;
    const n = a.length, m = b.length;
    const L = [];
    for (let i = 0; i <= n; i++) L.push(new Uint16Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
      else if (L[i + 1][j] >= L[i][j + 1]) out.push(["-", a[i++]]);
      else out.push(["+", b[j++]]);
    }
    while (i < n) out.push(["-", a[i++]]);
    while (j < m) out.push(["+", b[j++]]);
    return out;
  }

  async function blobText(sha) {
    const r = await api("GET", "/v1/blobs/" + encodeURIComponent(sha));
    if (r.status !== 200) throw new Error(errText(r, "Loading version contents"));
    return typeof r.data === "string" ? r.data : JSON.stringify(r.data, null, 2);
  }

  async function pageArtifact(view, r) {
    const id = r.arg || "";
    const res = await api("GET", "/v1/items/" + encodeURIComponent(id));
    if (res.status !== 200 || !res.data || !res.data.item) {
      title("Not found");
      view.appendChild(h("h1", null, "Not found"));
      view.appendChild(msg("error", res.status === 404 ? "There is no artifact " + id + " in your team." : errText(res, "Loading the artifact")));
      return;
    }
    const it = res.data.item;
    title(it.title || "Artifact");
    view.appendChild(h("h1", null, it.title || "(untitled)"));
    view.appendChild(itemMeta(it));
    if (it.body) view.appendChild(h("div", {class: "body"}, md(it.body)));
    const vs = it.versions || [];
    const status = h("div", {"aria-live": "polite"});
    view.appendChild(h("h2", null, "Versions"));
    view.appendChild(status);
    view.appendChild(table("Versions", ["Version", "Status", "Size|n", "Created", "Accepted by", "SHA-256", "Actions"],
      vs.map((v) => {
        let action = null;
        if (v.status !== "accepted" && canDecide()) {
          action = h("button", {type: "button", "aria-label": "Accept version " + v.version}, "Accept");
          action.addEventListener("click", async () => {
            action.disabled = true;
            const a = await api("POST", "/v1/artifacts/" + encodeURIComponent(it.id) + "/versions/" + v.version + "/accept");
            clear(status);
            if (a.status === 200) { flash = ["ok", "Version " + v.version + " accepted."]; route(); }
            else { action.disabled = false; status.appendChild(msg("error", errText(a, "Accepting version " + v.version))); }
          });
        }
        return h("tr", null, h("td", null, "v" + v.version), h("td", null, badge(v.status)),
          h("td", {class: "num"}, bytes(v.size)), h("td", null, timeEl(v.created_at)),
          h("td", null, v.accepted_by ? v.accepted_by + " " + when(v.accepted_at) : "–"),
          h("td", null, h("code", null, String(v.sha256 || "").slice(0, 12))), h("td", null, action));
      })));
    if (vs.length >= 1) {
      const opt = (cur) => vs.map((v) => h("option", {value: String(v.version), selected: v.version === cur}, "v" + v.version));
      const from = h("select", {id: "diff-from"}, opt(vs.length > 1 ? vs[vs.length - 2].version : vs[0].version));
      const to = h("select", {id: "diff-to"}, opt(vs[vs.length - 1].version));
      const out = h("div", {"aria-live": "polite"});
      const btn = h("button", {type: "button"}, vs.length > 1 ? "Show diff" : "Show contents");
      btn.addEventListener("click", async () => {
        clear(out);
        const va = vs.find((v) => String(v.version) === from.value), vb = vs.find((v) => String(v.version) === to.value);
        try {
          const [ta, tb] = await Promise.all([blobText(va.sha256), blobText(vb.sha256)]);
          if (va === vb) { out.appendChild(h("pre", {class: "blob", tabindex: "0", "aria-label": "Contents of v" + va.version}, ta)); return; }
          const d = lineDiff(ta.split("\n"), tb.split("\n"));
          if (!d) { out.appendChild(msg("warn", "These versions are too long to compare here.")); return; }
          const added = d.filter((x) => x[0] === "+").length, removed = d.filter((x) => x[0] === "-").length;
          out.appendChild(h("p", {role: "status"}, "v" + va.version + " → v" + vb.version + ": " + added + " lines added, " + removed + " removed."));
          out.appendChild(h("div", {class: "diff", tabindex: "0", role: "region", "aria-label": "Diff"},
            d.map((x) => h("div", {class: x[0] === "+" ? "add" : x[0] === "-" ? "del" : null},
              (x[0] === "+" ? "+ " : x[0] === "-" ? "− " : "  ") + x[1]))));
        } catch (e) { out.appendChild(msg("error", e.message)); }
      });
      view.appendChild(h("h2", null, "Compare versions"));
      view.appendChild(h("div", {class: "row"},
        h("div", {class: "field"}, h("label", {for: "diff-from"}, "From version"), from),
        h("div", {class: "field"}, h("label", {for: "diff-to"}, "To version"), to), btn));
      view.appendChild(out);
    }
  }

  async function pageAudit(view, r) {
    title("Audit");
    const before = r.params.get("before") || "";
    view.appendChild(h("h1", null, "Audit log"));
    const res = await api("GET", "/v1/audit" + qs({before, limit: 50}));
    if (res.status !== 200) { view.appendChild(msg("error", errText(res, "Loading the audit log"))); return; }
    const v = res.data.verification || {};
    view.appendChild(v.ok ? msg("ok", "Hash chain verified: " + v.entries + " entries intact (checked " + when(v.checked_at) + ").")
      : msg("error", "Hash chain verification FAILED" + (v.bad !== null && v.bad !== undefined ? " at entry " + v.bad : "") + ": the log was altered."));
    const entries = res.data.entries || [];
    view.appendChild(h("p", {class: "muted"}, "Your team's entries, newest first."));
    view.appendChild(table("Audit entries", ["#", "When", "Who", "Action", "Detail"],
      entries.map((e) => h("tr", null, h("td", null, String(e.n)), h("td", null, timeEl(e.at)), h("td", null, e.actor || "–"),
        h("td", null, e.action || "–"), h("td", null, detailText(e.detail))))));
    const more = h("p", {class: "actions"});
    if (before) more.appendChild(h("a", {href: "#/audit"}, "Newest"));
    if (res.data.next_before !== null && res.data.next_before !== undefined)
      more.appendChild(h("a", {href: "#/audit" + qs({before: res.data.next_before})}, "Older entries"));
    view.appendChild(more);
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const k of Object.keys(attrs || {})) el.setAttribute(k, String(attrs[k]));
    return el;
  }
  function barChart(days) {
    const W = 720, H = 160, pad = 18, n = days.length || 1;
    const max = Math.max(1, ...days.map((d) => d.count || 0));
    const bw = (W - 2) / n;
    const s = svg("svg", {class: "chart", viewBox: "0 0 " + W + " " + (H + pad), role: "img",
                          "aria-labelledby": "chart-title", preserveAspectRatio: "none"});
    const t = svg("title", {id: "chart-title"});
    const total = days.reduce((a, d) => a + (d.count || 0), 0);
    t.textContent = "Observations per day: " + total + " in " + days.length + " days, at most " + max + " a day";
    s.appendChild(t);
    days.forEach((d, i) => {
      const c = d.count || 0;
      const bh = c ? Math.max(2, Math.round((H - 4) * c / max)) : 1;
      const rect = svg("rect", {x: (1 + i * bw).toFixed(2), y: H - bh, width: Math.max(1, bw - 2).toFixed(2), height: bh,
                                class: c ? "bar" : "zero"});
      const tip = svg("title", {});
      tip.textContent = d.day + ": " + c;
      rect.appendChild(tip);
      s.appendChild(rect);
    });
    const first = svg("text", {x: 2, y: H + pad - 4}); first.textContent = days.length ? days[0].day : "";
    const last = svg("text", {x: W - 2, y: H + pad - 4, "text-anchor": "end"}); last.textContent = days.length ? days[days.length - 1].day : "";
    s.appendChild(first); s.appendChild(last);
    return s;
  }

  async function pageTeam(view, r) {
    title("Team");
    let days = parseInt(r.params.get("days") || "30", 10);
    if (!(days >= 1 && days <= 365)) days = 30;
    view.appendChild(h("h1", null, "Team activity"));
    const res = await api("GET", "/v1/team/activity" + qs({days}));
    if (res.status !== 200) { view.appendChild(msg("error", errText(res, "Loading team activity"))); return; }
    const d = res.data;
    const dw = d.drafts_waiting || {}, al = d.approval_latency || {};
    const sel = h("select", {id: "f-days"}, [7, 30, 90, 365].map((n) => h("option", {value: String(n), selected: n === days}, n + " days")));
    sel.addEventListener("change", () => { location.hash = "#/team" + qs({days: sel.value}); });
    view.appendChild(h("div", {class: "row"}, h("div", {class: "field"}, h("label", {for: "f-days"}, "Period"), sel)));
    const stat = (label, value) => h("div", {class: "stat"}, h("dt", null, label), h("dd", null, value));
    view.appendChild(h("dl", {class: "stats"},
      stat("Drafts waiting", String(dw.count || 0)),
      stat("Oldest waiting", dur(dw.oldest_age_s)),
      stat("Median wait", dur(dw.median_age_s)),
      stat("Decisions in period", String(al.count || 0)),
      stat("Approval latency (median)", dur(al.median_s)),
      stat("Approval latency (p90)", dur(al.p90_s))));
    const per = d.observations_per_day || [];
    const total = per.reduce((a, x) => a + (x.count || 0), 0);
    view.appendChild(h("h2", {id: "obs-title"}, "Observations per day"));
    view.appendChild(h("figure", {"aria-labelledby": "obs-title"}, barChart(per),
      h("figcaption", {class: "muted"}, total + " observations in the last " + per.length + " days.")));
    view.appendChild(h("details", null, h("summary", null, "Observations per day as a table"),
      table("Observations per day", ["Day", "Observations|n"], per.map((x) => h("tr", null, h("td", null, x.day), h("td", {class: "num"}, String(x.count)))))));
    const ws = d.workspaces || [];
    view.appendChild(h("h2", null, "Workspaces"));
    if (!ws.length) view.appendChild(h("p", {class: "muted"}, "No workspace has pulled since the core recorded syncs."));
    else view.appendChild(table("Workspaces and their sync lag", ["Workspace", "Key", "Last sync", "Cursor|n", "Lag|n"],
      ws.map((w) => h("tr", null, h("td", null, w.workspace || "–"), h("td", null, w.principal || "–"),
        h("td", null, h("time", {datetime: w.last_sync_at || null, title: when(w.last_sync_at)}, age(w.last_sync_at) + " ago")),
        h("td", {class: "num"}, String(w.cursor)), h("td", {class: "num"}, String(w.lag))))));
  }

  async function pageKeys(view) {
    title("Keys");
    view.appendChild(h("h1", null, "Keys"));
    if (!session || session.role !== "admin") {
      view.appendChild(msg("warn", "Only an admin key manages keys."));
      return;
    }
    const res = await api("GET", "/v1/keys");
    if (res.status !== 200) { view.appendChild(msg("error", errText(res, "Loading keys"))); return; }
    const status = h("div", {id: "keys-status", "aria-live": "polite"});
    const name = h("input", {id: "k-name", name: "name", type: "text", maxlength: "64", required: true, autocomplete: "off"});
    const role = h("select", {id: "k-role", name: "role"}, ["agent", "reviewer", "admin"].map((x) => h("option", {value: x}, x)));
    const form = h("form", {"aria-labelledby": "new-key-title"},
      h("h2", {id: "new-key-title"}, "Create a key"),
      h("div", {class: "row"},
        h("div", {class: "field"}, h("label", {for: "k-name"}, "Name"), name),
        h("div", {class: "field"}, h("label", {for: "k-role"}, "Role"), role),
        h("button", {type: "submit"}, "Create key")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(status);
      const r = await api("POST", "/v1/keys", {name: name.value.trim(), role: role.value});
      if (r.status !== 201 && r.status !== 200) { status.appendChild(msg("error", errText(r, "Creating the key"))); return; }
      const shown = h("input", {id: "new-key", type: "text", readonly: true, value: r.data.key, size: "48", autocomplete: "off"});
      const copy = h("button", {type: "button", class: "plain"}, "Copy");
      copy.addEventListener("click", async () => {
        shown.select();
        try { await navigator.clipboard.writeText(shown.value); copy.textContent = "Copied"; }
        catch (e) { copy.textContent = "Select and copy by hand"; }
      });
      status.appendChild(h("div", {class: "msg ok", role: "status"},
        h("p", null, "Key " + r.data.name + " (" + r.data.role + ") created. Copy it now: it is shown only this once."),
        h("div", {class: "row"}, h("div", {class: "field"}, h("label", {for: "new-key"}, "New key"), shown), copy)));
      name.value = "";
      await drawList();
    });
    const listBox = h("div");
    async function drawList() {
      const lr = await api("GET", "/v1/keys");
      clear(listBox);
      if (lr.status !== 200) { listBox.appendChild(msg("error", errText(lr, "Loading keys"))); return; }
      fill(lr.data.keys || []);
    }
    function fill(keys) {
      listBox.appendChild(table("Keys of team " + session.team, ["Name", "Role", "Key id", "Created", "State", "Actions"],
        keys.map((k) => {
          const cell = h("td");
          if (!k.revoked_at) {
            const b = h("button", {type: "button", class: "danger", "aria-label": "Revoke key " + k.name}, "Revoke");
            b.addEventListener("click", () => {
              clear(cell);
              const yes = h("button", {type: "button", class: "danger"}, "Confirm revoke");
              const no = h("button", {type: "button", class: "plain"}, "Cancel");
              no.addEventListener("click", () => { clear(cell); cell.appendChild(b); b.focus(); });
              yes.addEventListener("click", async () => {
                yes.disabled = true;
                const rr = await api("POST", "/v1/keys/" + encodeURIComponent(k.key_id) + "/revoke");
                clear(status);
                if (rr.status === 200) {
                  status.appendChild(msg("ok", "Key " + k.name + " revoked; its sessions ended."));
                  if (session && k.key_id === session.key_id) { showSignedOut("You revoked your own key."); return; }
                  await drawList();
                } else {
                  yes.disabled = false;
                  status.appendChild(msg("error", errText(rr, "Revoking " + k.name)));
                }
              });
              cell.appendChild(h("span", {role: "group", "aria-label": "Confirm revoking " + k.name},
                "Revoke " + k.name + "? ", yes, " ", no));
              yes.focus();
            });
            cell.appendChild(b);
          }
          return h("tr", null, h("td", null, k.name || "–"), h("td", null, k.role), h("td", null, h("code", null, k.key_id)),
            h("td", null, timeEl(k.created_at)), h("td", null, k.revoked_at ? badge("revoked " + when(k.revoked_at), "rejected") : badge("active", "approved")), cell);
        })));
    }
    fill(res.data.keys || []);
    view.appendChild(form);
    view.appendChild(status);
    view.appendChild(h("h2", null, "Keys of team " + session.team));
    view.appendChild(listBox);
  }

  // --- start ---------------------------------------------------------------
  signoutBtn.addEventListener("click", signOut);
  document.getElementById("skip").addEventListener("click", (ev) => { ev.preventDefault(); main.focus(); });
  window.addEventListener("hashchange", () => { route(); main.focus({preventScroll: true}); });

  (async function boot() {
    const r = await api("GET", "/v1/session");
    if (r.status === 200 && r.data && r.data.csrf) {
      session = r.data;
      setChrome();
      route();
    } else {
      showSignedOut();
    }
  })();
})();
