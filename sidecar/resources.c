/* SPDX-License-Identifier: Apache-2.0 */
/* MCP resources over the store. */
#include "resources.h"

#include "util/error.h"
#include "util/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cx_resources_list(cx_store *s, size_t max, json_t **out) {
    json_t *recent = NULL;
    cx_recent_query q = {.limit = max > 100 ? 100 : max, .max_tokens = 20000};
    int r = cx_store_recent(s, &q, &recent);
    if (r)
        return r;
    json_t *list = json_array();
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "uri", CX_RESOURCE_RECENT,
                                          "name", "recent", "title", "Recent changes",
                                          "description",
                                          "What changed most recently in this workspace's memory",
                                          "mimeType", "application/json"));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(recent, "items"), i, it) {
        const char *id = json_string_value(json_object_get(it, "id"));
        const char *title = json_string_value(json_object_get(it, "title"));
        const char *kind = json_string_value(json_object_get(it, "kind"));
        char uri[96];
        snprintf(uri, sizeof uri, "%s%s", CX_RESOURCE_ITEM_PREFIX, id ? id : "");
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "uri", uri, "name",
                                              title && *title ? title : (id ? id : ""),
                                              "description", kind ? kind : "item", "mimeType",
                                              "application/json"));
    }
    json_decref(recent);
    *out = list;
    return 0;
}

json_t *cx_resources_templates(void) {
    return json_pack("[{s:s, s:s, s:s, s:s, s:s}]", "uriTemplate", CX_RESOURCE_ITEM_PREFIX "{id}",
                     "name", "item", "title", "Memory item", "description",
                     "One item of the workspace's memory, in full, by id", "mimeType",
                     "application/json");
}

int cx_resources_read(cx_store *s, const char *uri, json_t **out) {
    json_t *doc = NULL;
    int r;
    if (strcmp(uri, CX_RESOURCE_RECENT) == 0) {
        cx_recent_query q = {.limit = 50, .max_tokens = 8000};
        r = cx_store_recent(s, &q, &doc);
    } else if (strncmp(uri, CX_RESOURCE_ITEM_PREFIX, strlen(CX_RESOURCE_ITEM_PREFIX)) == 0) {
        const char *id = uri + strlen(CX_RESOURCE_ITEM_PREFIX);
        if (!cx_ulid_valid(id))
            return cx_error_set(CX_ENOTFOUND, "resource not found: %s is not an item id", uri);
        r = cx_store_get(s, id, &doc);
        if (r == CX_ENOTFOUND)
            return cx_error_set(CX_ENOTFOUND, "resource not found: no item %s", id);
    } else {
        return cx_error_set(CX_ENOTFOUND,
                            "resource not found: %s (known: cortex://recent, cortex://item/{id})",
                            uri);
    }
    if (r)
        return r;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return CX_ENOMEM;
    *out = json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri, "mimeType",
                     "application/json", "text", text);
    free(text);
    return *out ? 0 : CX_ENOMEM;
}
