/* Capability checks (DESIGN.md "Handler globals"): tokens such as `state:write:count`,
 * `events:emit:*`, `ext:http` or `*`. */
#ifndef WK_CAPS_H
#define WK_CAPS_H

#include <stdbool.h>
#include <stddef.h>

void caps_clear(void);
/* Adds one granted token; false when out of memory. */
bool caps_add(const char *token, size_t len);
/* Whether `<kind><name>` is granted, kind being e.g. "state:write:" (with its trailing colon). */
bool caps_allow(const char *kind, const char *name, size_t name_len);

#endif
