/**
 * Training data: the {@link ai.lorapar.data.Example} value type, a JSONL reader for GSM8K, Alpaca and Dolly
 * records whose errors name the file and line, and atomic file writes (temporary file, then move).
 */
package ai.lorapar.data;
