// A stand-in for FATE's storage service (lmdb over grpc on port 7778): it takes the same
// -p and -d, and --help shows what it was built from.
#include <iostream>
#include <string>

#include "storage.pb.h"
#include "tiny.h"

int main(int argc, char** argv) {
  std::string port = "7778";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << "usage: storage-service -p PORT -d DATA_DIR\n"
                << "proto package: " << storage_proto_package() << "\n"
                << "linked with: " << tiny_version() << std::endl;
      return 0;
    }
    if (arg == "-p" && i + 1 < argc) port = argv[++i];
  }
  std::cout << "storage-service listening on " << port << std::endl;
  return 0;
}
