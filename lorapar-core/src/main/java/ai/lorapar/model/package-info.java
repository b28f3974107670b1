/**
 * LLaMA-family causal decoders (LLaMA-2/3, Qwen2/2.5, Mistral) on DJL, loaded from local Hugging
 * Face folders: {@link ai.lorapar.model.ModelConfig} (config.json), {@link ai.lorapar.model.DecoderModel}
 * (forward pass, KV cache), {@link ai.lorapar.model.Linear} with its {@link ai.lorapar.model.LinearAdapter}
 * hook (where LoRA attaches), and {@link ai.lorapar.model.CausalLmLoss} (masked token cross-entropy).
 * Generation is in {@code ai.lorapar.model.generate}, tokenizers and prompt templates in
 * {@code ai.lorapar.model.tokenizer}.
 */
package ai.lorapar.model;
