// SPDX-License-Identifier: Apache-2.0
// The review app in Debian's chromium (headless, driven by puppeteer-core;
// no browser is downloaded), against the real cortex-core that test-web.py
// started over HTTPS with a self-signed certificate (CORE_URL, CORE_CA) and
// seeded (a pending draft with evidence, a hostile draft, an artifact with
// two versions). Each user gets a browser context of its own (own cookies).
//  - reviewer: signs in with the keyboard through the field labelled
//    "API key" and the button "Sign in"; the session cookie is HttpOnly,
//    Secure, SameSite=Strict and unseen by scripts; nothing is kept in
//    local or session storage; the queue lists the draft with its evidence
//    count; a third draft gets "Request changes" with a note; the draft page shows the markdown body, both evidence
//    observations with their file marked stale (it changed since), and the
//    comment; approving with a note makes it canon;
//  - the hostile draft's title and body show as text: no dialog, no
//    window.__pwned, no iframe/script/img/svg/object made from data, no
//    event-handler attribute, no javascript:/data: link (its comment too);
//  - a POST without (or with a wrong) X-CSRF-Token from the page: 403 csrf;
//  - search finds the approved draft as a canon thread and the item page
//    shows its decision in the history; the artifact's versions diff and
//    version 2 is accepted; the audit page shows a verified chain; the team
//    page draws its chart with the numbers as text;
//  - agent key: no Approve/Reject/Request changes buttons, a visible
//    read-only message; a forced decision with a valid CSRF token: 403;
//  - team U's reviewer: empty queue, the draft's page and API 404, search
//    finds nothing, the audit shows none of T's entries;
//  - admin: keys listed, a key created (shown once) and revoked after a
//    confirmation step; a session of that key then gets 401;
//  - sign-out: the old cookie then gets 401 from /v1/session;
//  - axe-core: no serious or critical violation on any page; at 390 px wide
//    the pages do not scroll sideways;
//  - screenshots of every page at 1280x800 in CORTEX_WEB_SCREENS.
//  - the sources: app.js has no innerHTML-like sink or eval; index.html no
//    inline script, style or event attribute.
// Prints "browser: N passed, N failed"; exits 1 on a failure.
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
let puppeteer;
try {
  puppeteer = (await import("puppeteer-core")).default;
} catch (e) {
  console.log("FAIL: puppeteer-core is not installed in tests/web: run `bash .ci/setup.sh --test` (" + e.message + ")");
  console.log("browser: 0 passed, 1 failed");
  process.exit(1);
}
const AXE = fs.readFileSync(path.join(HERE, "node_modules", "axe-core", "axe.min.js"), "utf8");

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run through test-web.py)`);
  return v;
};
const BASE = env("CORE_URL");
const CA = fs.readFileSync(env("CORE_CA"));
const KEYS = {reviewer: env("KEY_REVIEWER"), agent: env("KEY_AGENT"), admin: env("KEY_ADMIN"), other: env("KEY_OTHER")};
const DRAFT_TITLE = env("DRAFT_TITLE");
const HOSTILE_TITLE = env("HOSTILE_TITLE");
const env3 = env("THIRD_TITLE");
const EVIDENCE = (process.env.EVIDENCE_IDS || "").split(",").filter(Boolean);
const SCREENS = process.env.CORTEX_WEB_SCREENS || path.join(HERE, "web-screens");
const README_SHOTS = process.env.CORTEX_WEB_README || "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15000;

let passed = 0, failed = 0;
function check(cond, what) {
  if (cond) passed++;
  else { failed++; console.log("FAIL:", what); }
  return !!cond;
}
// The code of an error body: {"error": {"code": …}} (or a bare {"error": code}).
const errCode = (b) => b && (typeof b.error === "object" && b.error ? b.error.code : b.error);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An HTTPS request to the core from node, trusting its certificate.
function request(method, p, {cookie, body, headers} = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(p, BASE);
    const h = Object.assign({}, headers || {});
    if (cookie) h.Cookie = cookie;
    let data;
    if (body !== undefined) { data = Buffer.from(JSON.stringify(body)); h["Content-Type"] = "application/json"; h["Content-Length"] = data.length; }
    const req = https.request({host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, ca: CA, timeout: 20000},
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString()}));
      });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

// The app's sources: no HTML sinks in the script (comments aside), no inline
// script, style or event attribute in the page (the CSP would refuse them).
{
  const web = path.join(HERE, "..", "..", "src", "core", "web");
  const js = fs.readFileSync(path.join(web, "app.js"), "utf8").split("\n")
    .filter((l) => !/^\s*\/\//.test(l)).join("\n");
  const sinks = js.match(/\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|Function)\s*[(=]/g);
  check(!sinks, `app.js uses no HTML sink or eval: ${sinks}`);
  const html = fs.readFileSync(path.join(web, "index.html"), "utf8");
  check(!/<script(?![^>]*\bsrc=)/i.test(html) && !/\sstyle=|<style|\son[a-z]+=/i.test(html),
        "index.html has no inline script, style or event attribute");
}
fs.mkdirSync(SCREENS, {recursive: true});
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  acceptInsecureCerts: true, // the core's certificate is self-signed for 127.0.0.1
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage", "--font-render-hinting=none"],
  protocolTimeout: 60000,
});
const dialogs = [];
const pageErrors = [];

async function newUser(name) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  await page.setViewport({width: 1280, height: 800});
  page.on("dialog", async (d) => { dialogs.push(`${name}: ${d.type()} ${d.message()}`); await d.dismiss(); });
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
  return {ctx, page, name};
}

async function shot(page, name) {
  await page.screenshot({path: path.join(SCREENS, name + ".png")});
  if (README_SHOTS && ["draft", "search", "audit"].includes(name)) {
    fs.mkdirSync(README_SHOTS, {recursive: true});
    await page.screenshot({path: path.join(README_SHOTS, name + ".png")});
  }
}

// axe-core is evaluated through the DevTools protocol (not a <script>
// element), which the page's CSP does not govern: no CSP bypass is needed.
async function axe(page, what) {
  const has = await page.evaluate(() => typeof window.axe === "object");
  if (!has) await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, {resultTypes: ["violations"]});
    return r.violations.map((v) => ({id: v.id, impact: v.impact, n: v.nodes.length,
                                     target: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
  });
  const bad = res.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `axe on ${what}: no serious or critical violations: ${JSON.stringify(bad)}`);
  const minor = res.filter((v) => !(v.impact === "serious" || v.impact === "critical"));
  if (minor.length) console.log(`note: axe on ${what}: minor: ${JSON.stringify(minor)}`);
}

// Goes to a page by its hash and waits until the app has drawn it (main
// not aria-busy, data-route the hash).
async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await drawn(page);
}
async function drawn(page) {
  await page.waitForFunction(() => {
    const m = document.querySelector("main");
    return m && !m.hasAttribute("aria-busy") && m.getAttribute("data-route") === location.hash;
  }, {timeout: WAIT});
}
const text = (page, sel) => page.$eval(sel, (e) => e.textContent).catch(() => null);
const mainText = (page) => page.$eval("main", (e) => e.innerText);
async function waitText(page, needle, timeout = WAIT) {
  try {
    await page.waitForFunction((n) => document.querySelector("main") && document.querySelector("main").innerText.includes(n), {timeout}, needle);
    return true;
  } catch (e) { return false; }
}
async function buttonNames(page) {
  return page.$$eval("main button", (bs) => bs.map((b) => (b.getAttribute("aria-label") || b.textContent).trim()));
}
// Signs in through the form, by keyboard: focus the field labelled "API
// key" (found by its accessible name), type, press Enter.
async function signIn(u, key, {keyboard = false} = {}) {
  const res = await u.page.goto(BASE + "/", {waitUntil: "networkidle0"});
  const field = await u.page.waitForSelector("::-p-aria(API key)");
  if (keyboard) {
    await field.focus();
    await u.page.keyboard.type(key);
    await u.page.keyboard.press("Enter");
  } else {
    await field.type(key);
    await (await u.page.waitForSelector("::-p-aria(Sign in[role=\"button\"])")).click();
  }
  await u.page.waitForSelector("nav:not([hidden])", {timeout: WAIT});
  await drawn(u.page);
  return res;
}
async function sessionCookie(page) {
  const cs = await page.cookies(BASE);
  return cs.find((c) => c.name === "cortex_session");
}
async function pageFetch(page, method, p, body, headers) {
  return page.evaluate(async (method, p, body, headers) => {
    const r = await fetch(p, {method, credentials: "same-origin", headers: Object.assign({"Content-Type": "application/json"}, headers || {}),
                              body: body === null ? undefined : JSON.stringify(body)});
    let j = null;
    try { j = await r.json(); } catch (e) { /* empty */ }
    return {status: r.status, body: j};
  }, method, p, body === undefined ? null : body, headers || {});
}
async function noSidewaysScroll(page, what) {
  await page.setViewport({width: 390, height: 844});
  await sleep(150);
  const w = await page.evaluate(() => ({doc: document.documentElement.scrollWidth, win: window.innerWidth}));
  check(w.doc <= w.win + 1, `${what} at 390 px wide does not scroll sideways (${w.doc} > ${w.win})`);
  await page.screenshot({path: path.join(SCREENS, what + "-390.png")});
  await page.setViewport({width: 1280, height: 800});
  await sleep(100);
}

// Runs one step; a crash or a timeout in it counts as one failure and the
// next step goes on (from a page it navigates to itself).
async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(false, `${name}: crashed: ${e && e.stack || e}`);
  }
}

let draftId = null, hostileId = null;
try {
  // ---------------------------------------------------------------- reviewer
  const R = await newUser("reviewer");
  {
    const page = R.page;
    const first = await page.goto(BASE + "/", {waitUntil: "networkidle0"});
    const csp = first.headers()["content-security-policy"] || "";
    check(csp.includes("script-src 'self'") && csp.includes("default-src 'none'") && !csp.includes("unsafe-inline"),
          `the page has a strict Content-Security-Policy: ${csp}`);
    check(first.headers()["x-frame-options"] === "DENY" && first.headers()["x-content-type-options"] === "nosniff",
          "the page has X-Frame-Options DENY and nosniff");
    await page.waitForSelector("::-p-aria(API key)");
    await axe(page, "sign-in");
    await shot(page, "signin");
    // a wrong key is refused with a visible message
    await (await page.$("::-p-aria(API key)")).type("cxk_wrong_0000000000000000");
    await page.keyboard.press("Enter");
    check(await waitText(page, "not accepted"), "a wrong key is refused with a visible message");
    check(!(await sessionCookie(page)), "no session cookie after a wrong key");

    await signIn(R, KEYS.reviewer, {keyboard: true});
    const c = await sessionCookie(page);
    check(c && c.httpOnly && c.secure && c.sameSite === "Strict",
          `the session cookie is HttpOnly, Secure and SameSite=Strict: ${JSON.stringify(c && {h: c.httpOnly, s: c.secure, ss: c.sameSite})}`);
    check(c && c.expires > Date.now() / 1000 && c.expires < Date.now() / 1000 + 13 * 3600,
          `the session cookie expires within 12 h: ${c && c.expires}`);
    const store = await page.evaluate(() => ({cookie: document.cookie, ls: localStorage.length, ss: sessionStorage.length,
                                                html: document.documentElement.outerHTML}));
    check(!store.cookie.includes("cortex_session"), "scripts cannot read the session cookie");
    check(store.ls === 0 && store.ss === 0, "nothing is kept in localStorage or sessionStorage");
    check(!store.html.includes(KEYS.reviewer), "the key is nowhere in the page after sign-in");
    check((await page.$eval("#key", (e) => e.value).catch(() => "")) === "", "the key field is empty");

    // queue
    await step("queue", async () => {
      check(await waitText(page, DRAFT_TITLE), "the queue lists the pending draft");
      const rows = await page.$$eval("main tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim())));
      const row = rows.find((r) => r[0] === DRAFT_TITLE);
      check(row && row[1] && row[3] === "build" && row[5] === String(EVIDENCE.length),
            `the draft's row: title, author, subcortex build, ${EVIDENCE.length} evidence: ${JSON.stringify(row)}`);
      check(rows.some((r) => r[0] === HOSTILE_TITLE), "the hostile draft's title is listed as text");
      const links = await page.$$eval("main tbody a", (as) => as.map((a) => [a.textContent, a.getAttribute("href")]));
      draftId = (links.find((l) => l[0] === DRAFT_TITLE) || [])[1]?.replace("#/draft/", "");
      hostileId = (links.find((l) => l[0] === HOSTILE_TITLE) || [])[1]?.replace("#/draft/", "");
      check(draftId && hostileId, `both drafts link to their pages: ${draftId} ${hostileId}`);
      // the subcortex filter
      const opts = await page.$$eval("#f-subcortex option", (os) => os.map((o) => o.value));
      check(opts.includes("build") && opts.includes("security"), `the subcortex filter offers the waiting drafts' subcortices: ${opts}`);
      await page.select("#f-subcortex", "security");
      await page.waitForFunction(() => location.hash.includes("subcortex=security"));
      await drawn(page);
      const filtered = await page.$$eval("main tbody tr", (trs) => trs.length);
      check(filtered === 1 && (await mainText(page)).includes(HOSTILE_TITLE) && !(await mainText(page)).includes(DRAFT_TITLE),
            "filtering by subcortex security shows only the hostile draft");
      await go(page, "#/queue");
      await waitText(page, DRAFT_TITLE);
      await axe(page, "queue");
      await shot(page, "queue");
      await noSidewaysScroll(page, "queue");
    });

    // the draft with its evidence, by clicking its link
    await step("draft", async () => {
      await go(page, "#/queue");
      await waitText(page, DRAFT_TITLE);
      await page.click(`main a[href="#/draft/${draftId}"]`);
      await page.waitForSelector("#item-title");
      await drawn(page);
      check((await text(page, "#item-title")) === DRAFT_TITLE, "the draft page shows the title");
      const body = await page.$eval("main .body", (e) => ({h: e.querySelector("h3") && e.querySelector("h3").textContent,
        li: e.querySelectorAll("li").length, code: e.querySelector("pre code") && e.querySelector("pre code").textContent,
        strong: e.querySelector("strong") && e.querySelector("strong").textContent,
        a: e.querySelector("a") && e.querySelector("a").getAttribute("href")}));
      check(body.h === "What to do" && body.li === 2 && body.strong === "gcc 12" && (body.code || "").includes("apt-get install gcc-12")
            && body.a === "https://packages.debian.org/bookworm/gcc-12",
            `the markdown body is rendered (heading, list, strong, code, link): ${JSON.stringify(body)}`);
      const ev = await page.$$eval("#ev-title ~ ul.cards > li", (ls) => ls.map((l) => l.innerText));
      check(ev.length === EVIDENCE.length && ev.every((t) => t.includes("ci/Dockerfile")),
            `the draft shows its ${EVIDENCE.length} evidence observations with their file: ${JSON.stringify(ev)}`);
      check(ev.some((t) => t.includes("debian:12")) && ev.some((t) => t.includes("gcc 13")), "the evidence bodies are shown");
      const stale = await page.$$eval("#ev-title ~ ul.cards > li", (ls) => ls.map((l) => !!l.querySelector(".badge.stale")));
      check(stale.length && stale.every(Boolean), `the evidence is marked stale (ci/Dockerfile changed since): ${stale}`);
      const cm = await page.$$eval("#cm-title ~ ul.cards > li", (ls) => ls.map((l) => l.innerText));
      check(cm.length === 1 && cm[0].includes("Checked against the CI image") && cm[0].includes("it matches"),
            `the draft shows its comment: ${JSON.stringify(cm)}`);
      const names = await buttonNames(page);
      check(["Approve", "Reject", "Request changes"].every((n) => names.includes(n)), `a reviewer sees the decision buttons: ${names}`);
      check(await page.$("::-p-aria(Note)"), "the note field is labelled Note");
      await axe(page, "draft");
      await shot(page, "draft");
      await noSidewaysScroll(page, "draft");
      // Reject without a note is refused in the page, nothing is sent
      await (await page.$("::-p-aria(Reject[role=\"button\"])")).click();
      check(await waitText(page, "needs a note"), "Reject without a note asks for one");
      // approve with a note
      const NOTE = "Matches the CI image; thanks.";
      await (await page.$("::-p-aria(Note)")).type(NOTE);
      await (await page.$("::-p-aria(Approve[role=\"button\"])")).click();
      check(await waitText(page, "canon"), "approving says the draft is canon");
      await page.waitForFunction(() => !document.querySelector("#decide-title"), {timeout: WAIT}).catch(() => {});
      const after = await pageFetch(page, "GET", "/v1/items/" + draftId);
      const it = after.body && after.body.item || {};
      check(after.status === 200 && it.kind === "thread" && it.status === "canon" && it.review && it.review.note === NOTE,
            `the core made the draft canon with the note: ${after.status} ${JSON.stringify({k: it.kind, s: it.status, r: it.review})}`);
      check(!(await buttonNames(page)).includes("Approve"), "a decided draft has no decision buttons");
    });

    // a third draft: Request changes with a note
    await step("request changes", async () => {
      await go(page, "#/queue");
      const href = await page.$$eval("main tbody a", (as, t) => {
        const a = as.find((x) => x.textContent === t);
        return a ? a.getAttribute("href") : null;
      }, env3);
      check(href, "the queue lists the third draft");
      await go(page, href);
      await (await page.waitForSelector("::-p-aria(Note)")).type("Our style guide says 4 spaces; cite it or change the draft.");
      await (await page.$("::-p-aria(Request changes[role=\"button\"])")).click();
      check(await waitText(page, "Changes requested"), "Request changes says so");
      const r = await pageFetch(page, "GET", "/v1/items/" + href.split("/").pop());
      check(r.body && r.body.item && r.body.item.status === "changes_requested" && r.body.item.review &&
            /style guide/.test(r.body.item.review.note || ""), `the core records changes_requested with the note: ${JSON.stringify(r.body && r.body.item && r.body.item.review)}`);
    });

    // a draft of ~200 KB of unmatched delimiters draws (the renderer stays linear)
    await step("heavy draft", async () => {
      await go(page, "#/queue");
      const href = await page.$$eval("main tbody a", (as, t) => {
        const a = as.find((x) => x.textContent === t);
        return a ? a.getAttribute("href") : null;
      }, env("HEAVY_TITLE"));
      await go(page, href);
      check(await waitText(page, "heavy-end-marker"), "a draft of 200 KB of unmatched markdown delimiters is drawn, whole");
    });

    // the hostile draft: all text, nothing runs
    await step("hostile draft", async () => {
      await go(page, "#/draft/" + hostileId);
      await page.waitForSelector("#item-title");
      await drawn(page);
      await sleep(500);
      const probe = await page.evaluate(() => {
        const m = document.querySelector("main");
        const all = [...m.querySelectorAll("*")];
        return {
          title: document.getElementById("item-title").textContent,
          body: m.querySelector(".body").innerText,
          pwned: window.__pwned,
          bad: m.querySelectorAll("script, iframe, img, picture, video, audio, svg, object, embed, frame, style, link, base, form[action]").length,
          scripts: [...document.querySelectorAll("script")].map((s) => s.getAttribute("src")),
          iframes: document.querySelectorAll("iframe").length,
          handlers: all.filter((e) => [...e.attributes].some((a) => /^on/i.test(a.name))).length,
          hrefs: [...m.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")),
        };
      });
      check(probe.title === HOSTILE_TITLE, `the hostile title is shown as text, whole: ${probe.title}`);
      const box = await (await page.$("#item-title")).boundingBox();
      check(box && box.width > 100 && box.height > 10, `the hostile title is visible: ${JSON.stringify(box)}`);
      check(["<iframe", "<svg onload", "javascript:window.__pwned=6", "<script>window.__pwned=9</script>", "onerror="].every((s) => probe.body.includes(s)),
            `the hostile body is shown as text: ${probe.body}`);
      const hc = await page.$$eval("#cm-title ~ ul.cards > li", (ls) => ls.map((l) => l.innerText));
      check(hc.length === 1 && hc[0].includes(env("HOSTILE_COMMENT")), `the hostile comment is shown as text: ${JSON.stringify(hc)}`);
      check(probe.pwned === undefined, `no hostile script ran (window.__pwned: ${probe.pwned})`);
      check(probe.bad === 0 && probe.iframes === 0, `no script/iframe/img/svg element was made from data (${probe.bad}, ${probe.iframes})`);
      check(probe.scripts.length === 1 && probe.scripts[0] === "/app/app.js", `the only script is the app's: ${probe.scripts}`);
      check(probe.handlers === 0, "no element in the page has an event-handler attribute");
      check(probe.hrefs.length === 1 && probe.hrefs[0] === "https://example.com/ok",
            `only the https link is a link (no javascript:, data:, vbscript:, //host): ${probe.hrefs}`);
      check(["(JAVASCRIPT:window.__pwned=10)", "(&#106;avascript:window.__pwned=11)", "(//evil.example/x)", "[image: pic"].every((x) => probe.body.includes(x)),
            "refused links and images are shown as text");
      await axe(page, "hostile draft");
      await shot(page, "draft-hostile");
    });

    // CSRF: a state-changing request without the token, or with a wrong one, is refused
    await step("csrf", async () => {
      const noTok = await pageFetch(page, "POST", `/v1/drafts/${hostileId}/decision`, {decision: "approve"});
      check(noTok.status === 403 && errCode(noTok.body) === "csrf", `a decision without X-CSRF-Token: 403 csrf: ${JSON.stringify(noTok)}`);
      const badTok = await pageFetch(page, "POST", `/v1/drafts/${hostileId}/decision`, {decision: "approve"}, {"X-CSRF-Token": "not-the-token"});
      check(badTok.status === 403 && errCode(badTok.body) === "csrf", `a decision with a wrong token: 403 csrf: ${JSON.stringify(badTok)}`);
      const noTokOut = await pageFetch(page, "DELETE", "/v1/session");
      check(noTokOut.status === 403, `DELETE /v1/session without the token: 403 (${noTokOut.status})`);
      const still = await pageFetch(page, "GET", "/v1/items/" + hostileId);
      check(still.body && still.body.item && still.body.item.status === "pending", "the hostile draft is still pending");
    });

    // search
    await step("search", async () => {
      await go(page, "#/search");
      const box = await page.waitForSelector("::-p-aria(Search[role=\"searchbox\"])");
      await box.type("toolchain gcc");
      await page.keyboard.press("Enter");
      await page.waitForSelector("#search-count");
      await drawn(page);
      const results = await page.$$eval("main ol.cards > li", (ls) => ls.map((l) => ({t: l.querySelector("h2").innerText, m: l.querySelector(".meta").innerText})));
      check(results.length && results[0].t === DRAFT_TITLE && /thread/.test(results[0].m) && /canon/.test(results[0].m),
            `search finds the approved draft first, as a canon thread: ${JSON.stringify(results)}`);
      check(await page.$("main mark"), "the query's words are marked in the snippets");
      await axe(page, "search");
      await shot(page, "search");
      await noSidewaysScroll(page, "search");
      await page.$eval("#q", (e) => { e.value = ""; });
      await (await page.$("::-p-aria(Search[role=\"searchbox\"])")).type("gcc");
      await page.select("#f-kind", "observation");
      await page.click("main form button[type=submit]");
      await page.waitForFunction(() => location.hash.includes("kind=observation"));
      await drawn(page);
      const kinds = await page.$$eval("main ol.cards .meta .badge.kind", (bs) => bs.map((b) => b.textContent));
      check(kinds.length >= 1 && kinds.every((k) => k === "observation"), `the kind filter keeps observations only: ${kinds}`);
      // the item page, with its history
      await go(page, "#/item/" + draftId);
      await page.waitForSelector("#hist-title");
      const hist = await mainText(page);
      check(hist.includes("approve") && hist.includes("rita-reviewer") && hist.includes("Matches the CI image"),
            "the item page shows the decision, who made it and the note");
      await axe(page, "item");
      await shot(page, "item");
    });

    // artifacts: the list, the versions, a diff, accept v2
    await step("artifacts", async () => {
      await go(page, "#/artifacts");
      check(await waitText(page, "build.sh"), "the artifacts page lists build.sh");
      await axe(page, "artifacts");
      await shot(page, "artifacts");
      const artHref = await page.$eval("main tbody a", (a) => a.getAttribute("href"));
      await go(page, artHref);
      await page.waitForSelector("#diff-from");
      await (await page.$("::-p-aria(Show diff)")).click();
      await page.waitForSelector("main .diff");
      const diff = await page.$$eval("main .diff div", (ds) => ds.map((d) => [d.className, d.textContent]));
      check(diff.some((d) => d[0] === "add" && d[1].includes("make check")) && diff.some((d) => d[0] === "del" && d[1].includes("set -e")),
            `the diff of v1 and v2 marks the added and removed lines: ${JSON.stringify(diff)}`);
      await (await page.$("::-p-aria(Accept version 2)")).click();
      check(await waitText(page, "Version 2 accepted"), "accepting version 2 says so");
      await drawn(page);
      await page.waitForSelector("#diff-from");
      await axe(page, "artifact");
      await shot(page, "artifact");
      await noSidewaysScroll(page, "artifact");
      const art = await pageFetch(page, "GET", "/v1/items/" + artHref.split("/").pop());
      const v2 = ((art.body && art.body.item && art.body.item.versions) || []).find((v) => v.version === 2) || {};
      check(v2.status === "accepted" && v2.accepted_by, `version 2 is accepted at the core: ${JSON.stringify(v2)}`);
    });

    // audit and team
    await step("audit and team", async () => {
      await go(page, "#/audit");
      check(await waitText(page, "Hash chain verified"), "the audit page shows the chain verified");
      const audit = await mainText(page);
      check(audit.includes(draftId), "the audit log lists the decision on the draft");
      await axe(page, "audit");
      await shot(page, "audit");
      await noSidewaysScroll(page, "audit");
      await go(page, "#/team");
      await page.waitForSelector("main svg.chart");
      const team = await page.evaluate(() => ({
        bars: document.querySelectorAll("main svg.chart rect").length,
        label: document.querySelector("main svg.chart title") && document.querySelector("main svg.chart title").textContent,
        rows: document.querySelectorAll("main details tbody tr").length,
        text: document.querySelector("main").innerText,
      }));
      check(team.bars >= 30 && team.bars <= 31 && team.rows === team.bars, `the chart has a bar and a table row per day: ${team.bars} ${team.rows}`);
      check(/Observations per day: [1-9]\d* in 3[01] days/.test(team.label || ""), `the chart says its numbers as text: ${team.label}`);
      check(team.text.includes("Drafts waiting"), "the team page shows the drafts waiting");
      await axe(page, "team");
      await shot(page, "team");
      await noSidewaysScroll(page, "team");
      await go(page, "#/keys");
      check(await waitText(page, "Only an admin"), "a reviewer's keys page says only an admin manages keys");
      check(await page.$eval("#nav-keys", (e) => e.hidden), "a reviewer has no Keys link");
    });

    // keyboard: the navigation is reachable by Tab and followed by Enter
    await step("keyboard", async () => {
      await go(page, "#/queue");
      await page.focus("#signout");
      let reached = false;
      for (let i = 0; i < 8 && !reached; i++) {
        await page.keyboard.press("Tab");
        reached = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("href") === "#/search");
      }
      check(reached, "Tab reaches the Search link");
      const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      check(ring && ring !== "none", `the focused link shows a focus ring: ${ring}`);
      if (reached) {
        await page.keyboard.press("Enter");
        check(await page.waitForFunction(() => location.hash === "#/search").then(() => true, () => false), "Enter follows it");
      }
    });

    // sign-out ends the session
    await step("sign-out", async () => {
      const before = await sessionCookie(page);
      await (await page.$("::-p-aria(Sign out)")).click();
      await page.waitForSelector("::-p-aria(API key)");
      check(!(await sessionCookie(page)), "signing out removes the cookie");
      const old = await request("GET", "/v1/session", {cookie: `cortex_session=${before && before.value}`});
      check(old.status === 401, `the old cookie then gets 401 from /v1/session (${old.status})`);
      const oldQ = await request("GET", "/v1/review/queue", {cookie: `cortex_session=${before && before.value}`});
      check(oldQ.status === 401, `and 401 from the queue (${oldQ.status})`);
    });

    await R.ctx.close();
  }

  // ---------------------------------------------------------------- agent
  await step("agent", async () => {
    const A = await newUser("agent");
    const page = A.page;
    await signIn(A, KEYS.agent);
    await go(page, "#/draft/" + hostileId);
    await page.waitForSelector("#item-title");
    await drawn(page);
    const names = await buttonNames(page);
    check(!names.some((n) => ["Approve", "Reject", "Request changes"].includes(n)), `an agent key has no decision buttons: ${names}`);
    check(!(await page.$("#note")), "an agent key has no Note field");
    check(await waitText(page, "cannot decide") || await waitText(page, "not decide", 100), "the page says an agent key is read-only");
    const s = await pageFetch(page, "GET", "/v1/session");
    const forced = await pageFetch(page, "POST", `/v1/drafts/${hostileId}/decision`, {decision: "approve"}, {"X-CSRF-Token": s.body && s.body.csrf});
    check(forced.status === 403 && errCode(forced.body) !== "csrf", `a forced decision with the agent's valid token: 403 (role): ${JSON.stringify(forced)}`);
    const forcedAccept = await pageFetch(page, "POST", `/v1/keys`, {name: "x", role: "admin"}, {"X-CSRF-Token": s.body && s.body.csrf});
    check(forcedAccept.status === 403, `an agent key cannot create keys: ${forcedAccept.status}`);
    await axe(page, "draft (agent)");
    await shot(page, "draft-agent");
    await A.ctx.close();
  });

  // ---------------------------------------------------------------- another team
  await step("another team", async () => {
    const U = await newUser("other-team");
    const page = U.page;
    await signIn(U, KEYS.other);
    await drawn(page);
    check(await waitText(page, "Nothing waits for review"), "another team's reviewer sees an empty queue");
    const q = await pageFetch(page, "GET", "/v1/review/queue");
    check(q.status === 200 && q.body && q.body.total === 0 && q.body.drafts.length === 0, `the queue API is empty for team U: ${JSON.stringify(q.body)}`);
    await go(page, "#/draft/" + hostileId);
    check(await waitText(page, "Not found"), "the draft page says not found");
    for (const id of [draftId, hostileId, ...EVIDENCE]) {
      const r = await pageFetch(page, "GET", "/v1/items/" + id);
      check(r.status === 404, `GET /v1/items/${id} for team U: 404 (${r.status})`);
    }
    const d = await pageFetch(page, "POST", `/v1/drafts/${hostileId}/decision`, {decision: "approve"},
                              {"X-CSRF-Token": (await pageFetch(page, "GET", "/v1/session")).body.csrf});
    check(d.status === 404, `team U's reviewer cannot decide on team T's draft: 404 (${d.status})`);
    const sr = await pageFetch(page, "GET", "/v1/search?q=toolchain");
    check(sr.status === 200 && sr.body && sr.body.results.length === 0, `search finds nothing of team T: ${JSON.stringify(sr.body)}`);
    const sk = await pageFetch(page, "GET", "/v1/search?kind=thread");
    check(sk.status === 200 && sk.body && sk.body.results.length === 0, "no canon of team T either");
    await go(page, "#/search?q=toolchain");
    check(await waitText(page, "0 results"), "the search page says 0 results");
    await go(page, "#/audit");
    await waitText(page, "Hash chain");
    const at = await mainText(page);
    check(!at.includes(draftId) && !at.includes("rita-reviewer"), "team U's audit page shows none of team T's entries");
    await go(page, "#/artifacts");
    check(!(await mainText(page)).includes("build.sh"), "team U sees no artifacts of team T");
    await U.ctx.close();
  });

  // ---------------------------------------------------------------- admin: keys
  await step("admin: keys", async () => {
    const M = await newUser("admin");
    const page = M.page;
    await signIn(M, KEYS.admin);
    check(!(await page.$eval("#nav-keys", (e) => e.hidden)), "an admin has the Keys link");
    await go(page, "#/keys");
    check(await waitText(page, "rita-reviewer"), "the keys page lists the team's keys");
    check(!(await mainText(page)).includes("uma-reviewer"), "and none of another team's");
    await (await page.$("::-p-aria(Name)")).type("web-made-agent");
    await page.select("::-p-aria(Role)", "agent");
    await (await page.$("::-p-aria(Create key)")).click();
    await page.waitForSelector("#new-key");
    const newKey = await page.$eval("#new-key", (e) => e.value);
    check(/^cxk_/.test(newKey), `the new key is shown once: ${newKey.slice(0, 8)}…`);
    check(await waitText(page, "shown only this once"), "with the hint to copy it now");
    await page.waitForNetworkIdle({idleTime: 200}).catch(() => {});
    await axe(page, "keys");
    await shot(page, "keys");
    // a session of the new key, then revoke the key: its session ends
    const N = await newUser("new-key");
    await signIn(N, newKey);
    const live = await pageFetch(N.page, "GET", "/v1/session");
    check(live.status === 200 && live.body.principal === "web-made-agent", `the new key signs in: ${JSON.stringify(live.body)}`);
    await (await page.$("::-p-aria(Revoke key web-made-agent)")).click();
    const confirm = await page.waitForSelector("::-p-aria(Confirm revoke)");
    check(confirm, "revoking asks for a confirmation");
    await confirm.click();
    check(await waitText(page, "revoked; its sessions ended"), "the key is revoked");
    const dead = await pageFetch(N.page, "GET", "/v1/session");
    check(dead.status === 401, `revoking a key ends its sessions (${dead.status})`);
    await N.ctx.close();
    await noSidewaysScroll(page, "keys");
    await M.ctx.close();
  });
} catch (e) {
  check(false, "the browser test crashed: " + (e && e.stack || e));
} finally {
  check(dialogs.length === 0, `no dialog opened: ${JSON.stringify(dialogs)}`);
  check(pageErrors.length === 0, `no script error in any page: ${JSON.stringify(pageErrors)}`);
  await browser.close().catch(() => {});
}
console.log(`screenshots: ${SCREENS}`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
