/* Stand-in for the lmdb header the real builder compiles. */
#define MDB_VERSION_MAJOR 0
