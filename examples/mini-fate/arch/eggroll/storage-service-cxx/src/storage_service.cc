// Miniature storage service: the real one serves lmdb over grpc on port 7778.
#include <iostream>

int main() {
  std::cout << "storage-service listening on 7778" << std::endl;
  return 0;
}
