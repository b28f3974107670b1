/**
 * LoRA-PAR's element importance per system (paper §3.2): {@link ai.lorapar.importance.ImportanceAccumulator}
 * sums per-example gradients g and parameters φ into I(φ) = |mean(g·φ) − ½·mean((g·φ)²)|, one
 * non-negative fp32 array per LoRA tensor, and {@link ai.lorapar.importance.ImportanceMap} holds, saves
 * and loads the result (safetensors, with the example count in the metadata).
 */
package ai.lorapar.importance;
