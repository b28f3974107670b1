package ai.lorapar.io;

import ai.djl.ndarray.types.Shape;

/**
 * One tensor's entry in a safetensors header.
 *
 * @param name the tensor's key
 * @param dtype its element type
 * @param shape its shape
 * @param dataOffset absolute byte offset of its data in the file
 * @param byteLength length of its data in bytes
 */
public record TensorInfo(String name, SafetensorsDtype dtype, Shape shape, long dataOffset, long byteLength) {

    /** Number of elements. */
    public long size() {
        return shape.size();
    }
}
