/* SPDX-License-Identifier: Apache-2.0 */
/* Search: a keyword list (BM25 over the store's FTS5 indexes), a semantic
 * list (cosine similarity of vectors kept in memory), their fusion, and
 * the answer (trust, recency, staleness, filters, snippets, token budget).
 *
 * The parts: the keyword list and ranking in rank.c, the vector index in
 * vindex.c, snippets in snippet.c, the answer in answer.c, the query
 * builder in fts.c; this file sets up the per-store state and runs a
 * search step by step. */
#include "search/search.h"

#include "proto/wire.h"
#include "search/search-internal.h"
#include "store/store-search.h"
#include "text/tokenizer.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define VEC_RAM_BUDGET CX_SEARCH_VECTOR_MEMORY
#define WARM_INLINE 4096 /* vectors a search loads itself while the warm-up runs */

static void ext_free(void *p) {
    cx_search_ext *e = p;
    if (!e)
        return;
    if (e->tok)
        e->tok_api.xDelete(e->tok);
    cx_rank_cache_free(e->rank_cache);
    cx_postings_free(e->postings);
    cx_vindex_free(&e->builtin);
    cx_vindex_free(&e->other);
    free(e);
}

static int count_token(void *ctx, int flags, const char *tok, int n, int start, int end) {
    (*(int *)ctx)++;
    return SQLITE_DONE; /* one is enough */
}

static bool has_tokens(void *ud, const char *word, size_t len) {
    cx_search_ext *e = ud;
    int count = 0;
    e->tok_api.xTokenize(e->tok, &count, FTS5_TOKENIZE_QUERY, word, (int)len, count_token);
    return count > 0;
}

/* The per-store search state, made on first use: the store's "cortex"
 * tokenizer and the cx_bm25 function on this connection. */
int cx_search_ext_get(cx_store *s, cx_search_ext **out) {
    cx_search_ext *have = cx_store_search_ext(s);
    if (have) {
        *out = have;
        return 0;
    }
    sqlite3 *db = cx_store_sqlite(s);
    fts5_api *api = cx_text_fts5_api(db);
    if (!api)
        return cx_error_set(CX_EFAIL, "this SQLite has no FTS5; search needs it");
    cx_search_ext *e = calloc(1, sizeof *e);
    if (!e)
        return CX_ENOMEM;
    e->ram_budget = VEC_RAM_BUDGET;
    e->post_budget = CX_SEARCH_POSTINGS_MEMORY;
    void *ud = NULL;
    if (api->xFindTokenizer(api, CX_TEXT_TOKENIZER, &ud, &e->tok_api) != SQLITE_OK ||
        e->tok_api.xCreate(ud, NULL, 0, &e->tok) != SQLITE_OK ||
        api->xCreateFunction(api, "cx_bm25", e, cx_rank_bm25, NULL) != SQLITE_OK ||
        api->xCreateFunction(api, "cx_fts_rows", e, cx_rank_rows, NULL) != SQLITE_OK ||
        api->xCreateFunction(api, "cx_phrase_rows", e, cx_postings_rows_fn, NULL) != SQLITE_OK ||
        api->xCreateFunction(api, "cx_fts_tokens", e, cx_postings_tokens_fn, NULL) != SQLITE_OK) {
        ext_free(e);
        return cx_error_set(CX_EFAIL, "cannot set up FTS5 search: %s", sqlite3_errmsg(db));
    }
    cx_store_search_ext_set(s, e, ext_free);
    *out = e;
    return 0;
}

int cx_search_set_postings_memory(cx_store *s, size_t bytes) {
    cx_search_ext *e = NULL;
    int r = cx_search_ext_get(s, &e);
    if (r == 0)
        e->post_budget = bytes;
    return r;
}

int cx_search_set_exhaustive(cx_store *s, bool on) {
    cx_search_ext *e = NULL;
    int r = cx_search_ext_get(s, &e);
    if (r == 0)
        e->exhaustive = on;
    return r;
}

/* ---- the query embedding ---- */

typedef struct qvecs {
    float *main;          /* the query embedder's vector */
    float *builtin;       /* the built-in one, when the query embedder is another */
    int64_t main_model;   /* embed_models.id (0: no vectors of it in this store) */
    bool main_is_builtin;
} qvecs;

/* The embedder of q's vector: the query's own, else the store's model,
 * else the built-in one; *builtin when that is the built-in model (by
 * its id), which embeds in the process. */
static cx_embedder *query_embedder(cx_store *s, const cx_search_query *q, bool *builtin) {
    cx_embedder *b = cx_store_builtin_embedder(s), *model = cx_store_embedder(s);
    cx_embedder *qe = q->embedder ? q->embedder : model ? model : b;
    *builtin = qe == b || strcmp(cx_embed_model_id(qe), cx_embed_model_id(b)) == 0;
    return qe;
}

/* Embeds the query (`text`: q's, or q's followed by the corrections of
 * its typos); on failure of the query embedder *degraded says why. */
static int embed_query(cx_store *s, const cx_search_query *q, const char *text, qvecs *v,
                       char **degraded) {
    cx_embedder *builtin = cx_store_builtin_embedder(s), *model = cx_store_embedder(s);
    cx_embedder *qe = query_embedder(s, q, &v->main_is_builtin);
    int r;
    if (v->main_is_builtin) {
        v->main_model = cx_store_builtin_model(s);
        qe = builtin;
    } else if (qe == model) {
        v->main_model = cx_store_embedder_model(s);
    } else if ((r = cx_vec_model_id(s, cx_embed_model_id(qe), 0, false, &v->main_model))) {
        return r;
    }
    int dim = cx_embed_dim(qe);
    if (!v->main_is_builtin && (r = cx_embed_probe(qe)) == 0)
        dim = cx_embed_dim(qe);
    else if (!v->main_is_builtin)
        goto failed;
    if (dim <= 0 || dim > CX_EMBED_MAX_DIM) {
        r = cx_error_set(CX_EFAIL, "the embedder %s has no usable dimension", cx_embed_model_id(qe));
        goto failed;
    }
    if (!(v->main = malloc(sizeof(float) * (size_t)dim)))
        return CX_ENOMEM;
    if ((r = cx_embed_batch(qe, &text, 1, v->main)))
        goto failed;
    if (!v->main_is_builtin) {
        if (!(v->builtin = malloc(sizeof(float) * (size_t)cx_embed_dim(builtin))))
            return CX_ENOMEM;
        if ((r = cx_vec_builtin(s, text, v->builtin)))
            return r;
    }
    return 0;
failed:
    if (r == CX_ENOMEM)
        return r;
    free(v->main);
    v->main = NULL;
    char msg[512];
    snprintf(msg, sizeof msg, "semantic unavailable: %s", cx_error_last());
    *degraded = strdup(msg);
    return *degraded ? 0 : CX_ENOMEM;
}

/* ---- the search ---- */

int cx_search_mode_parse(const char *name, cx_search_mode *out) {
    if (!name || !*name || strcmp(name, "hybrid") == 0)
        *out = CX_SEARCH_HYBRID;
    else if (strcmp(name, "keyword") == 0)
        *out = CX_SEARCH_KEYWORD;
    else if (strcmp(name, "semantic") == 0)
        *out = CX_SEARCH_SEMANTIC;
    else
        return cx_error_set(CX_EINVAL, "mode \"%.40s\" is unknown; use hybrid, keyword or semantic",
                            name);
    return 0;
}

const char *cx_search_mode_name(cx_search_mode mode) {
    switch (mode) {
    case CX_SEARCH_KEYWORD:
        return "keyword";
    case CX_SEARCH_SEMANTIC:
        return "semantic";
    default:
        return "hybrid";
    }
}

/* One search in progress: what its steps share and what cleanup frees. */
typedef struct run {
    cx_store *s;
    const cx_search_query *q;
    cx_search_ext *e;
    size_t limit;
    json_t *tags;          /* the tags filter, normalised (an array) */
    char *tags_text;       /* ... as JSON text; NULL without tags */
    char *all, *any;       /* MATCH expressions: every word, any word */
    cx_typo *typo;         /* the query's corrections (typo.c) */
    cx_fts_opts *oall, *oany; /* ... and the phrases' weights; NULL: none */
    json_t *corrected;     /* for the answer, or NULL */
    char *etext;           /* the text embedded when corrected, or NULL */
    cx_qterms terms;       /* the query's phrases, for snippets */
    qvecs qv;
    char *degraded;        /* why the semantic side could not run */
    cx_fuse *F;
    cx_sem_hit *sh;
    bool reading;          /* a read snapshot is open */
    size_t nkw, nsem, nfb; /* hits ranked by each list */
} run;

/* Checks what the caller asked for; *limit and *tags (normalised, owned
 * by the caller) on success. */
static int check_query(const cx_search_query *q, size_t *limit, json_t **tags) {
    int r;
    if (!q->text)
        return cx_error_set(CX_EINVAL, "query is required");
    *limit = q->limit ? q->limit : 10;
    if (*limit > CX_SEARCH_MAX_LIMIT)
        return cx_error_set(CX_ELIMIT, "limit is %zu; it must be 1 to %d", *limit,
                            CX_SEARCH_MAX_LIMIT);
    if (q->mode != CX_SEARCH_HYBRID && q->mode != CX_SEARCH_KEYWORD &&
        q->mode != CX_SEARCH_SEMANTIC)
        return cx_error_set(CX_EINVAL, "mode is unknown; use hybrid, keyword or semantic");
    if (q->kind && *q->kind && cx_kind_parse(q->kind) == CX_KIND_INVALID)
        return cx_error_set(CX_EINVAL, "kind \"%.40s\" is unknown; use observation, draft, "
                                       "thread, comment or artifact",
                            q->kind);
    if (q->status && *q->status && cx_status_parse(q->status) == CX_STATUS_INVALID)
        return cx_error_set(CX_EINVAL, "status \"%.40s\" is unknown; use recorded, pending, "
                                       "approved, rejected, changes_requested, canon, published "
                                       "or accepted",
                            q->status);
    if ((r = cx_item_check_text("subcortex", q->subcortex, CX_STORE_MAX_TAG, false, true)))
        return r;
    return cx_item_check_tags("tags", q->tags, tags);
}

/* The per-store state, the tags filter as text and the two MATCH
 * expressions (R->all stays NULL when the text has no searchable word). */
static int prepare(run *R) {
    const cx_search_query *q = R->q;
    int r;
    if ((r = cx_search_ext_get(R->s, &R->e)))
        return r;
    if (q->tags.n > 0 && !(R->tags_text = json_dumps(R->tags, JSON_COMPACT)))
        return CX_ENOMEM;
    if ((r = cx_fts_build_query_keep(q->text, CX_FTS_ALL, has_tokens, R->e, &R->all)))
        return r;
    if (R->all && (r = cx_fts_build_query_keep(q->text, CX_FTS_ANY, has_tokens, R->e, &R->any)))
        return r;
    return 0;
}

/* The semantic list of the query's model and, when that is not the
 * built-in one, the list of items it has no vector of yet, ranked by their
 * built-in vectors. */
static int semantic_lists(run *R) {
    cx_search_ext *e = R->e;
    cx_store *s = R->s;
    cx_prefilter pf = cx_vindex_prefilter(R->q);
    cx_vindex *main = R->qv.main_is_builtin ? &e->builtin : &e->other;
    size_t n = 0;
    int r;
    if (!(R->sh = malloc(sizeof *R->sh * CX_SEARCH_SEM_VERIFY)))
        return CX_ENOMEM;
    int64_t pending = 0;
    if (e->warming && (r = cx_vindex_pending(s, main, R->qv.main_model, &pending)))
        return r;
    /* while the warm-up loads the index between requests: rank by what it
     * has, and say so, rather than load the rest in this request */
    bool loading = e->warming && pending > WARM_INLINE;
    if (loading) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "semantic ranks %zu of about %zu items while the vector index loads",
                 main->n, main->n + (size_t)pending);
        if (!(R->degraded = strdup(msg)))
            return CX_ENOMEM;
    } else if ((r = cx_vindex_refresh(s, e, main, R->qv.main_model))) {
        return r;
    }
    if ((!loading || main->n > 0) &&
        ((r = cx_vindex_search(s, main, R->qv.main, R->qv.main_is_builtin, &pf, NULL, R->sh,
                               CX_SEARCH_SEM_VERIFY, &n)) ||
         (r = cx_rank_add_semantic(R->F, R->sh, n, 0, &R->nsem))))
        return r;
    if (loading || R->qv.main_is_builtin)
        return 0;
    /* items the model has no vector of yet: their built-in ones */
    if ((r = cx_vindex_refresh(s, e, &e->builtin, cx_store_builtin_model(s))))
        return r;
    if (e->other.n < e->builtin.n &&
        ((r = cx_vindex_search(s, &e->builtin, R->qv.builtin, true, &pf, &e->other, R->sh,
                               CX_SEARCH_SEM_VERIFY, &n)) ||
         (r = cx_rank_add_semantic(R->F, R->sh, n, 1, &R->nfb))))
        return r;
    return 0;
}

/* Whether a word of the query may need a correction: the every-word
 * expression matches fewer than CX_TYPO_RARE items. Counted from the
 * posting cache, whose lists the keyword pass then uses, else by FTS5. */
static int typo_needed(run *R, bool *needed) {
    const cx_pmatch *m = NULL;
    bool ok = false;
    int r = cx_postings_match(R->e, R->s, R->all, &m, &ok);
    if (r == 0 && ok)
        *needed = m->nrows < CX_TYPO_RARE;
    if (r == 0 && !ok)
        r = cx_typo_needed(R->typo, R->all, needed);
    return r;
}

/* Typo correction (typo.c), inside the read snapshot: the expressions
 * again with corrections, which replace R->all and R->any when a word was
 * corrected. */
static int correct(run *R) {
    char *all = NULL, *any = NULL;
    int r;
    if (!(R->typo = malloc(sizeof *R->typo)) || !(R->oall = calloc(1, sizeof *R->oall)) ||
        !(R->oany = calloc(1, sizeof *R->oany)))
        return CX_ENOMEM;
    cx_typo_init(R->typo, R->s);
    bool needed = false;
    if ((r = R->typo->err) || (r = typo_needed(R, &needed)) || !needed) {
        free(R->oall);
        free(R->oany);
        R->oall = R->oany = NULL;
        goto out;
    }
    *R->oall = (cx_fts_opts){.mode = CX_FTS_ALL, .keep = has_tokens, .keep_ud = R->e,
                             .fix = cx_typo_fix, .fix_ud = R->typo};
    if ((r = cx_fts_build_query_opts(R->q->text, R->oall, &all)) || (r = R->typo->err))
        goto out;
    if (!all || !cx_typo_any(R->typo)) {
        free(R->oall);
        free(R->oany);
        R->oall = R->oany = NULL;
        goto out;
    }
    *R->oany = *R->oall;
    R->oany->mode = CX_FTS_ANY;
    if ((r = cx_fts_build_query_opts(R->q->text, R->oany, &any)) || (r = R->typo->err))
        goto out;
    if (!any) { /* cannot be: the same words as `all` */
        r = cx_error_set(CX_EFAIL, "internal: no expression for the corrected query");
        goto out;
    }
    if (!(R->corrected = cx_typo_corrected(R->typo)) ||
        (r = cx_typo_embed_text(R->typo, R->q->text, &R->etext)) || !R->etext) {
        r = r ? r : CX_ENOMEM;
        goto out;
    }
    free(R->all);
    free(R->any);
    R->all = all;
    R->any = any;
    all = any = NULL;
out:
    free(all);
    free(any);
    return r;
}

/* Opens a read snapshot of the search, the keyword index brought up to
 * date first when `indexed` (outside it: indexing writes). A search whose
 * query is embedded here (the built-in model: no call leaves the process)
 * runs in this one snapshot: one, not one for the corrections and one
 * for the lists, saves a read transaction's locks (two fcntl calls) and
 * its look at the WAL. */
static int snapshot_begin(run *R, bool indexed) {
    int64_t backlog = 0;
    int r = cx_store_read_begin(R->s);
    if (r == 0 && indexed && (r = cx_store_fts_backlog(R->s, &backlog)) == 0 && backlog > 0) {
        cx_store_read_end(R->s);
        if ((r = cx_store_fts_sync(R->s, 0)) == 0)
            r = cx_store_read_begin(R->s);
    }
    if (r)
        cx_store_read_end(R->s); /* none open: nothing done */
    R->reading = r == 0;
    return r;
}

/* Before the keyword list when a remote model embeds the query: the FTS
 * index brought up to date, then the corrections, in a read snapshot of
 * their own (closed again: the query is embedded with no transaction
 * open). */
static int keyword_prep(run *R) {
    int r = snapshot_begin(R, true);
    if (r == 0)
        r = correct(R);
    if (R->reading)
        cx_store_read_end(R->s);
    R->reading = false;
    return r;
}

/* Runs the lists the mode asks for, fuses them and adds the best hits to
 * the answer. */
static int find(run *R, cx_answer *a) {
    const cx_search_query *q = R->q;
    bool want_kw = q->mode != CX_SEARCH_SEMANTIC, want_sem = q->mode != CX_SEARCH_KEYWORD;
    int r;
    if (!(R->F = cx_rank_fuse_new(R->s, q, q->tags.n ? R->tags : NULL)))
        return CX_ENOMEM;
    bool here = true;
    if (want_sem)
        (void)query_embedder(R->s, q, &here);
    if (here) {
        if ((r = snapshot_begin(R, want_kw)) || (want_kw && (r = correct(R))))
            return r;
    } else if (want_kw && (r = keyword_prep(R))) {
        return r;
    }
    /* a remote model with no transaction open; the query followed by its
     * corrections when a word was corrected */
    if (want_sem &&
        (r = embed_query(R->s, q, R->etext ? R->etext : q->text, &R->qv, &R->degraded)))
        return r;
    if (R->degraded) {
        want_sem = false;
        if (!want_kw && R->reading) { /* keyword_prep opens its own */
            cx_store_read_end(R->s);
            R->reading = false;
        }
        if (!want_kw && (r = keyword_prep(R)))
            return r;
        want_kw = true;
    }
    R->F->sem_builtin = R->qv.main_is_builtin;
    if (!R->reading) {
        if ((r = cx_store_read_begin(R->s)))
            return r;
        R->reading = true;
    }
    if ((r = cx_snippet_terms(R->e, R->all, &R->terms)))
        return r;
    if (want_kw && (r = cx_rank_keyword(R->F, R->e, R->tags_text, R->all, R->any, R->limit,
                                        &R->nkw, R->oall, R->oany)))
        return r;
    if (want_sem && (r = semantic_lists(R)))
        return r;
    cx_rank_fuse(R->F, (R->nkw > 0) + (R->nsem > 0) + (R->nfb > 0));
    if ((r = cx_rank_canon_over_evidence(R->F)))
        return r;
    cx_hit *best[CX_SEARCH_MAX_LIMIT];
    size_t nbest = 0;
    cx_rank_best(R->F, R->limit, best, &nbest);
    return cx_answer_add(a, R->s, R->e, &R->terms, best, nbest);
}

static void run_free(run *R) {
    if (R->reading)
        cx_store_read_end(R->s);
    cx_rank_fuse_free(R->F);
    free(R->sh);
    free(R->qv.main);
    free(R->qv.builtin);
    free(R->degraded);
    free(R->terms.arena);
    free(R->all);
    free(R->any);
    free(R->typo);
    free(R->oall);
    free(R->oany);
    json_decref(R->corrected);
    free(R->etext);
    free(R->tags_text);
    json_decref(R->tags);
}

int cx_search_run(cx_store *s, const cx_search_query *q, json_t **out) {
    run R = {.s = s, .q = q};
    cx_answer a = {0};
    int r;
    if ((r = check_query(q, &R.limit, &R.tags)))
        return r;
    if ((r = prepare(&R)) || (r = cx_answer_begin(&a, q)))
        goto out;
    if (R.all && (r = find(&R, &a)))
        goto out;
    a.corrected = R.corrected;
    R.corrected = NULL;
    cx_answer_end(&a, R.degraded, out);
out:
    cx_answer_free(&a);
    run_free(&R);
    return r;
}
