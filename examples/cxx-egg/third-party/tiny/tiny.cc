#include "tiny.h"

const char* tiny_version() { return "tiny 3.0.0"; }
const char* tiny_version_number() { return "3.0.0"; }
