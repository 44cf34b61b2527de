// Empty-kernel launch cost through the CUDA runtime (the path PyTorch takes), on the CPU side: each round times a
// burst of N launches (N small enough for the GPU's launch queue, so the CPU never waits for the GPU inside the timed
// part), then synchronises outside the timing. Prints the median and best ns per launch over the rounds as JSON.
// Usage: launch_loop N ROUNDS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

__global__ void empty_kernel() {}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000;
  int rounds = argc > 2 ? atoi(argv[2]) : 400;
  for (int i = 0; i < 300; i++) {  // warm-up: past one lap of tailguard's default ring
    for (int k = 0; k < 1000; k++) empty_kernel<<<1, 32>>>();
    cudaDeviceSynchronize();
  }
  std::vector<double> ns;
  for (int r = 0; r < rounds; r++) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; i++) empty_kernel<<<1, 32>>>();
    auto t1 = std::chrono::steady_clock::now();
    cudaDeviceSynchronize();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  }
  std::sort(ns.begin(), ns.end());
  printf("{\"launches_per_round\":%d,\"rounds\":%d,\"median_ns\":%.2f,\"best_ns\":%.2f}\n", n, rounds, ns[ns.size() / 2],
         ns[0]);
  return cudaGetLastError() != cudaSuccess;
}
