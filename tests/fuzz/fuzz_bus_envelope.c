/* libFuzzer driver for the cross-node bus envelope decoder (src/bus/bus_redis.h): bytes read
 * from a Redis channel (anyone who can publish there) are decoded into a target and an encoded
 * packet; whatever arrives, the decoder must refuse it cleanly or produce an envelope that is
 * freed without leaks (ASan and UBSan check the rest). */
#include "bus/bus_redis.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bus_envelope_t e;
    if (bus_envelope_decode((const char *)data, size, &e) == 0)
        bus_envelope_dispose(&e);
    return 0;
}
