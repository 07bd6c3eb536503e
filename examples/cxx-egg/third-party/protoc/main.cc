// A protoc stand-in: `--version` answers like protoc 3, and `-I DIR --cpp_out=OUT X.proto`
// writes OUT/X.pb.h and OUT/X.pb.cc with a function returning the proto's package.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "tiny.h"

int main(int argc, char** argv) {
  std::string include = ".";
  std::string out;
  std::string proto;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--version") {
      std::cout << "libprotoc " << tiny_version_number() << std::endl;
      return 0;
    } else if (arg == "-I" && i + 1 < argc) {
      include = argv[++i];
    } else if (arg.rfind("--cpp_out=", 0) == 0) {
      out = arg.substr(10);
    } else {
      proto = arg;
    }
  }
  if (out.empty() || proto.empty()) {
    std::cerr << "usage: protoc -I DIR --cpp_out=OUT FILE.proto" << std::endl;
    return 1;
  }
  std::ifstream in(proto);
  if (!in) in.open(include + "/" + proto);
  if (!in) {
    std::cerr << proto << ": No such file or directory" << std::endl;
    return 1;
  }
  std::string line;
  std::string package;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string word;
    if (words >> word && word == "package" && words >> package) {
      package = package.substr(0, package.find(';'));
    }
  }
  std::string stem = proto.substr(proto.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find(".proto"));
  std::ofstream(out + "/" + stem + ".pb.h")
      << "#pragma once\nconst char* " << stem << "_proto_package();\n";
  std::ofstream(out + "/" + stem + ".pb.cc")
      << "#include \"" << stem << ".pb.h\"\nconst char* " << stem
      << "_proto_package() { return \"" << package << "\"; }\n";
  return 0;
}
