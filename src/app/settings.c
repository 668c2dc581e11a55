/* Widget settings defaults and public view: see settings.h. */
#include "app/settings.h"

#include <stdbool.h>
#include <string.h>

static json_t *defaults(void) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:n}", "theme", "light",
                     "headerText", "Chat with us", "position", "bottom-right", "primaryColor",
                     "#4f46e5", "welcomeMessage", "Hi! How can we help?", "agentDisplayName",
                     "Support", "offlineMessage",
                     "We're away right now. Leave a message and we'll get back to you.",
                     "autoOpenDelay", 0, "historyVisibility", "limit_to_active",
                     "companyLogoUrl");
}

json_t *app_widget_settings_public(const char *stored_json) {
    json_t *out = defaults();
    json_t *stored = stored_json ? json_loads(stored_json, 0, NULL) : NULL;
    if (json_is_object(stored)) {
        const char *key;
        json_t *val;
        json_object_foreach(stored, key, val) {
            json_t *def = json_object_get(out, key);
            if (!def)
                continue;
            /* Keep the default's type, except that the logo may be null or a string. */
            bool same = json_typeof(def) == json_typeof(val) ||
                        (json_is_integer(def) && json_is_integer(val)) ||
                        (!strcmp(key, "companyLogoUrl") && (json_is_string(val) || json_is_null(val)));
            if (same)
                json_object_set(out, key, val);
        }
    }
    json_decref(stored);
    return out;
}
