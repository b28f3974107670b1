/** Hugging Face tokenizers with their special tokens ({@link ai.lorapar.model.tokenizer.TextTokenizer}) and prompt templates ({@link ai.lorapar.model.tokenizer.PromptTemplate}). */
package ai.lorapar.model.tokenizer;
