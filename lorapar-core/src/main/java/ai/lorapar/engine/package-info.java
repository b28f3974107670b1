/**
 * What the DJL engine can do and the project's own libtorch JNI: {@link ai.lorapar.engine.EngineSupport}
 * (starting the engine with a clear error when the native library is missing, bf16 support, compute
 * dtype), {@link ai.lorapar.engine.CudaGraph} (CUDA-graph capture and replay) and
 * {@link ai.lorapar.engine.FusedOps} (opt-in fused natives).
 */
package ai.lorapar.engine;
