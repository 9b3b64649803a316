/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of JSON values against the flat JSON Schema subset that MCP
 * tool definitions use: type, properties, required, enum, items,
 * minLength/maxLength (characters), minimum/maximum, minItems/maxItems.
 * Unknown properties of an object are refused, so that a misspelt argument
 * is reported instead of silently ignored. */
#pragma once

#include <jansson.h>

/* 0 when value conforms; otherwise CX_EINVAL with a detail message that names
 * the path and what was expected, e.g. "limit: must be an integer from 1 to
 * 50 (got 0)", written for a model to act on. */
int cx_schema_validate(const json_t *schema, const json_t *value);
