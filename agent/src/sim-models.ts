// The models of the original test as the simulated GPU runs them: kernel-duration mixes that mimic ResNet-18 and
// ResNet-50 on an H100 (docs/bench.md says where the numbers come from). `tailguard bench --sim` and the agent's
// --demo run them through tg-workload.

/** Kernel-duration mixes ("us:count,...") per request/iteration, from the H100 measurements in docs/bench.md. */
export const SIM_MIXES = {
  /** ResNet-18 batch 1: 102 kernels (CUPTI count on the H100), ~0.46 ms of GPU time per request */
  resnet18_b1: "12:20,3:52,2:30",
  /** host time per operation of eager PyTorch on the H100 host (3.2-4.4 ms per eager ResNet-18 b1 request) */
  eagerGapUs: 25,
  /** ResNet-50 batch 1024: 171 kernels, ~165 ms per iteration (6.1 iterations/s on the H100) */
  resnet50_b1024: [[2600, 53], [350, 53], [130, 65]] as [number, number][],
};

/** ResNet-50 at batch B: the b1024 mix scaled to 5 ms at b8 (~200 iterations/s measured) .. 165 ms at b1024. */
export function resnet50Mix(batch: number): string {
  const ms = (b: number) => 5 + ((b - 8) * (165 - 5)) / (1024 - 8);
  const scale = Math.max(ms(batch), 2) / ms(1024);
  return SIM_MIXES.resnet50_b1024.map(([us, n]) => `${Math.max(1, Math.round(us * scale))}:${n}`).join(",");
}

/** ResNet-18 at batch B (the b1 mix; larger batches scale linearly, a rough guess documented as such). */
export function resnet18Mix(batch: number): string {
  return SIM_MIXES.resnet18_b1.split(",").map((g) => {
    const [us, n] = g.split(":").map(Number);
    return `${Math.max(1, Math.round(us * batch))}:${n}`;
  }).join(",");
}
