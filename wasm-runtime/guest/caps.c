#include "caps.h"

#include <stdlib.h>
#include <string.h>

/* Capability tokens as given in the context: `*`, exact tokens, or a prefix ending in `*`
 * (`state:write:*`, `state:*`). Stored as a flat array of owned C strings. */
static char **tokens;
static size_t token_count;

void caps_clear(void) {
  for (size_t i = 0; i < token_count; i++) free(tokens[i]);
  free(tokens);
  tokens = NULL;
  token_count = 0;
}

bool caps_add(const char *token, size_t len) {
  char **grown = realloc(tokens, (token_count + 1) * sizeof *tokens);
  if (!grown) return false;
  tokens = grown;
  char *copy = malloc(len + 1);
  if (!copy) return false;
  memcpy(copy, token, len);
  copy[len] = '\0';
  tokens[token_count++] = copy;
  return true;
}

static bool token_grants(const char *token, const char *kind, const char *name, size_t name_len) {
  size_t tlen = strlen(token);
  if (tlen == 1 && token[0] == '*') return true;
  size_t klen = strlen(kind);
  if (tlen > 0 && token[tlen - 1] == '*') {
    /* prefix grant: `state:*` or `state:write:*` */
    size_t plen = tlen - 1;
    if (plen <= klen) return strncmp(token, kind, plen) == 0;
    return strncmp(token, kind, klen) == 0 && plen - klen <= name_len &&
           memcmp(token + klen, name, plen - klen) == 0;
  }
  return tlen == klen + name_len && strncmp(token, kind, klen) == 0 &&
         memcmp(token + klen, name, name_len) == 0;
}

bool caps_allow(const char *kind, const char *name, size_t name_len) {
  for (size_t i = 0; i < token_count; i++) {
    if (token_grants(tokens[i], kind, name, name_len)) return true;
  }
  return false;
}
