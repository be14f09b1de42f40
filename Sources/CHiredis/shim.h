#ifndef OTPD_CHIREDIS_SHIM_H
#define OTPD_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/// redisReaderGetError is a macro; Swift cannot import it.
static inline const char *otpd_redisReaderGetError(redisReader *r) {
    return r->errstr;
}

#endif
