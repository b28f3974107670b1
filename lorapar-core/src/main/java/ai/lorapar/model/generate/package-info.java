/** Batched sampling with a KV cache: {@link ai.lorapar.model.generate.Generator}, {@link ai.lorapar.model.generate.SamplingConfig}, {@link ai.lorapar.model.generate.GenerationResult}. */
package ai.lorapar.model.generate;
