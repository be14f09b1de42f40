#ifndef OTPD_CCURL_SHIM_H
#define OTPD_CCURL_SHIM_H

#include <curl/curl.h>
#ifdef __linux__
/* Not in Swift's Glibc module: the poller that drives libcurl's socket-action API waits in epoll. */
#include <sys/epoll.h>
#endif

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

/* curl_multi_setopt is variadic too: the socket-action callbacks and their user pointer. */
typedef int (*otpd_curl_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *userp, void *socketp);
typedef int (*otpd_curl_timer_callback)(CURLM *multi, long timeout_ms, void *userp);

static inline CURLMcode otpd_curl_multi_setopt_socket_callback(CURLM *multi, otpd_curl_socket_callback callback) {
    return curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, callback);
}

static inline CURLMcode otpd_curl_multi_setopt_timer_callback(CURLM *multi, otpd_curl_timer_callback callback) {
    return curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, callback);
}

static inline CURLMcode otpd_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

static inline CURLMcode otpd_curl_multi_setopt_pointer(CURLM *multi, CURLMoption option, void *value) {
    return curl_multi_setopt(multi, option, value);
}

/* CURL_SOCKET_TIMEOUT is a macro of a macro Swift cannot import. */
static inline curl_socket_t otpd_curl_socket_timeout(void) {
    return CURL_SOCKET_TIMEOUT;
}

#endif
