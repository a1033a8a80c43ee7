#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_reset(wk_buf *b) {
  b->len = 0;
  b->failed = false;
}

static bool buf_reserve(wk_buf *b, size_t extra) {
  if (b->failed) return false;
  if (b->len + extra <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->failed = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void buf_put(wk_buf *b, const char *s, size_t n) {
  if (!buf_reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

void buf_puts(wk_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_put_u64(wk_buf *b, uint64_t v) {
  char tmp[24];
  int i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  buf_put(b, tmp + i, sizeof tmp - i);
}

void buf_put_json_string(wk_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_put(b, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    buf_put(b, s + start, i - start);
    start = i + 1;
    switch (c) {
      case '"': buf_put(b, "\\\"", 2); break;
      case '\\': buf_put(b, "\\\\", 2); break;
      case '\n': buf_put(b, "\\n", 2); break;
      case '\r': buf_put(b, "\\r", 2); break;
      case '\t': buf_put(b, "\\t", 2); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        buf_put(b, esc, 6);
      }
    }
  }
  buf_put(b, s + start, n - start);
  buf_put(b, "\"", 1);
}

void buf_next_item(wk_buf *b) {
  if (b->len > 0) buf_put(b, ",", 1);
}
