/**
 * What the DJL engine can do and the project's own libtorch JNI: {@link ai.lorapar.engine.EngineSupport}
 * (starting the engine with a clear error when the native library is missing, bf16 support, compute
 * dtype), {@link ai.lorapar.engine.CudaGraph} (CUDA-graph capture and replay) and
 * {@link ai.lorapar.engine.FusedOps} (opt-in fused natives), and data-parallel collectives:
 * {@link ai.lorapar.engine.Collective}, {@link ai.lorapar.engine.Collectives#fromEnvironment} (the launcher's
 * {@code RANK}/{@code WORLD_SIZE}/... variables, {@link ai.lorapar.engine.DistributedEnv}) and
 * {@link ai.lorapar.engine.ProcessGroup} (libtorch's c10d: NCCL on GPUs, Gloo on CPUs).
 */
package ai.lorapar.engine;
