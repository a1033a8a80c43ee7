/* Growable byte buffers used to build the guest's output JSON without a round trip through JS. */
#ifndef WK_BUF_H
#define WK_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *data;
  size_t len;
  size_t cap;
  bool failed; /* an allocation failed: the buffer's content is no longer trustworthy */
} wk_buf;

void buf_reset(wk_buf *b);
void buf_put(wk_buf *b, const char *s, size_t n);
void buf_puts(wk_buf *b, const char *s);
void buf_put_u64(wk_buf *b, uint64_t v);
/* Appends `s` (UTF-8, n bytes) as a quoted, escaped JSON string. */
void buf_put_json_string(wk_buf *b, const char *s, size_t n);
/* Starts a new item of a JSON array held in `b` (adds the comma when needed). */
void buf_next_item(wk_buf *b);

#endif
