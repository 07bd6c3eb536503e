// A grpc_cpp_plugin stand-in: FATE's Makefile only checks that it is there.
int main() { return 0; }
