/* Widget settings (PROTOCOL.md section 8): the defaults, and the public view the widget
 * fetches. Pure, any thread. */
#ifndef APP_SETTINGS_H
#define APP_SETTINGS_H

#include <jansson.h>

/* The stored settings object text merged over the defaults, with only the fields of section 8
 * (unknown stored keys are dropped). A stored text that does not parse counts as "{}". Returns
 * a new reference. */
json_t *app_widget_settings_public(const char *stored_json);

#endif
