#include <iostream>
#include <string>

std::string describeJobtrack();

int main() {
  std::cout << describeJobtrack() << '\n';
  return 0;
}
