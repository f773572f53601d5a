/* status.c - status strings, version, and per-handle error messages. */
#include "internal.h"

#include <stdio.h>

#define DRPO__STR2(x) #x
#define DRPO__STR(x) DRPO__STR2(x)

uint32_t drpo_version_number(void) { return DRPO_VERSION_NUMBER; }

const char *drpo_version_string(void)
{
    return DRPO__STR(DRPO_VERSION_MAJOR) "." DRPO__STR(DRPO_VERSION_MINOR) "." DRPO__STR(
        DRPO_VERSION_PATCH);
}

const char *drpo_status_string(drpo_status s)
{
    switch (s) {
    case DRPO_OK: return "ok";
    case DRPO_CONTINUE: return "continue: convergence criterion not met yet";
    case DRPO_CONVERGED: return "converged";
    case DRPO_STOPPED: return "stopped by the progress callback";
    case DRPO_ERR_NULL: return "a required pointer argument is NULL";
    case DRPO_ERR_SIZE: return "invalid size (zero, or sizes that do not match)";
    case DRPO_ERR_LOSS_NONFINITE: return "a loss is NaN or infinite";
    case DRPO_ERR_BASE_NEGATIVE: return "a base weight is negative or not finite";
    case DRPO_ERR_BASE_SUM: return "base weights do not sum to 1 (within 1e-9)";
    case DRPO_ERR_PARAM_RANGE: return "parameter value out of range";
    case DRPO_ERR_PARAM_UNSET: return "the ambiguity set's parameter is not set";
    case DRPO_ERR_KEY: return "unknown key, or a key not used by this ambiguity set";
    case DRPO_ERR_SET: return "unknown ambiguity set";
    case DRPO_ERR_NOMEM: return "out of memory";
    case DRPO_ERR_NO_SOLUTION: return "no successful solve yet";
    case DRPO_ERR_UNAVAILABLE: return "diagnostic not defined for this ambiguity set or form";
    case DRPO_ERR_NUMERICAL: return "numerical failure: an internal iteration did not converge";
    case DRPO_ERR_CALLBACK: return "a host callback returned an error";
    case DRPO_ERR_NONFINITE: return "a NaN or infinite loss, gradient or update";
    case DRPO_ERR_STATE: return "the call does not fit the handle's state or mode";
    case DRPO_ERR_IO: return "file input/output failed";
    case DRPO_ERR_CORRUPT: return "the file is truncated, damaged or not a checkpoint";
    case DRPO_ERR_INCOMPATIBLE: return "the checkpoint does not fit this library, model or objective";
    default: return "unknown status";
    }
}

drpo_status drpo__fail(char *buf, drpo_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, DRPO__ERRLEN, fmt, ap);
    va_end(ap);
    return status;
}
