package ai.lorapar.io;

import ai.djl.ndarray.types.DataType;

import java.util.Locale;

/** The element types of the safetensors format, with their DJL counterparts. */
public enum SafetensorsDtype {
    F64(8, DataType.FLOAT64),
    F32(4, DataType.FLOAT32),
    F16(2, DataType.FLOAT16),
    BF16(2, DataType.BFLOAT16),
    I64(8, DataType.INT64),
    I32(4, DataType.INT32),
    I16(2, DataType.INT16),
    I8(1, DataType.INT8),
    U8(1, DataType.UINT8),
    BOOL(1, DataType.BOOLEAN);

    private final int bytes;
    private final DataType djl;

    SafetensorsDtype(int bytes, DataType djl) {
        this.bytes = bytes;
        this.djl = djl;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** The DJL data type with the same bit layout. */
    public DataType toDataType() {
        return djl;
    }

    /** The safetensors dtype for a DJL type, or an error naming the type. */
    public static SafetensorsDtype of(DataType type) {
        for (SafetensorsDtype d : values()) {
            if (d.djl == type) {
                return d;
            }
        }
        throw new IllegalArgumentException("safetensors cannot store DJL data type " + type);
    }

    /** Parses a header's dtype string; null when the string is not a dtype this library reads. */
    static SafetensorsDtype parse(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }
}
