/* static.h — files embedded into p25-api at build time (cmake/embed_static.cmake). */
#ifndef P25_API_STATIC_H
#define P25_API_STATIC_H

#include <stddef.h>

struct static_file {
	const char *name;	/* "openapi.yaml", "app.js" … */
	const char *ctype;
	const char *data;
	size_t len;
};

extern const struct static_file static_files[];
extern const size_t static_nfiles;

const struct static_file *static_find(const char *name);

#endif
