/**
 * safetensors files: {@link ai.lorapar.io.SafetensorsFile} reads and validates one file (a tensor at a
 * time, memory-mapped), {@link ai.lorapar.io.SafetensorsCheckpoint} a model folder's single file or
 * shards, {@link ai.lorapar.io.SafetensorsWriter} writes atomically. Errors name the file and the
 * tensor. {@link ai.lorapar.io.StrictJson} parses JSON refusing repeated keys.
 */
package ai.lorapar.io;
