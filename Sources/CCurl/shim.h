#ifndef OTPD_CCURL_SHIM_H
#define OTPD_CCURL_SHIM_H

#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them. One typed
   accessor per argument type that otpd passes, nothing more. */

/* CURL_GLOBAL_DEFAULT is a macro of macros Swift cannot import. */
static inline CURLcode otpd_curl_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT);
}

static inline CURLcode otpd_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode otpd_curl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode otpd_curl_easy_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*otpd_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode otpd_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, otpd_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode otpd_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif
