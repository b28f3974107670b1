/**
 * LoRA adapters for {@link ai.lorapar.model.DecoderModel}: {@link ai.lorapar.lora.LoraConfig} (targets,
 * rank, alpha, dropout, initialisation), {@link ai.lorapar.lora.LoraModel} (install, parameters,
 * enable/disable, merge/unmerge, PEFT-format save/load, {@link ai.lorapar.lora.PerExampleGradients}
 * per-example gradients from one batched backward pass), and the decompositions behind PiSSA and
 * OLoRA ({@link ai.lorapar.lora.LowRankDecomposition}). LoRA tensor names ({@code <module>.lora_A},
 * {@code <module>.lora_B}) are read by {@link ai.lorapar.lora.LoraTensorName}.
 */
package ai.lorapar.lora;
