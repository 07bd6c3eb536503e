// A tiny shared library standing in for the storage service's third-party libraries.
#pragma once

// "tiny 3.0.0"
const char* tiny_version();
// "3.0.0"
const char* tiny_version_number();
