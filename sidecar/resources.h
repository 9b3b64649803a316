/* SPDX-License-Identifier: Apache-2.0 */
/* MCP resources: cortex://recent and cortex://item/{id}. */
#pragma once

#include <jansson.h>

#include "store/store.h"

#define CX_RESOURCE_RECENT "cortex://recent"
#define CX_RESOURCE_ITEM_PREFIX "cortex://item/"

/* Resource descriptors: cortex://recent, then the most recently changed
 * items (at most `max`). *out is a new array. */
int cx_resources_list(cx_store *s, size_t max, json_t **out);

/* The resource templates array (cortex://item/{id}); a new reference. */
json_t *cx_resources_templates(void);

/* {"contents":[{uri, mimeType, text}]} for a known URI; CX_ENOTFOUND for a
 * URI that names nothing. */
int cx_resources_read(cx_store *s, const char *uri, json_t **out);
