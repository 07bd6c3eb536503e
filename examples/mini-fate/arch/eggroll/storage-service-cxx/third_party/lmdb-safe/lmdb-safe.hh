// Stand-in for the lmdb-safe submodule header.
#pragma once
