#include "cli/cli_device.h"

#include <stdlib.h>

#include "core/backend.h"

int cli_device(const char *flag, const char **out, oir_error *err) {
    const char *env = getenv("OIR_DEVICE");
    const char *v = flag ? flag : env && *env ? env : NULL;
    *out = v;
    if (!v) return OIR_OK;
    be_device_spec spec;
    int rc = be_parse_device(v, &spec, err);
    if (rc) oir_error_prefix(err, "%s", flag ? "--device" : "OIR_DEVICE");
    return rc;
}
