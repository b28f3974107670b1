package ai.lorapar.io;

import ai.djl.ndarray.types.DataType;

import java.util.Locale;

/** The element types of the safetensors format, with their DJL counterparts. */
public enum SafetensorsDtype {
    /** 64-bit float. */
    F64(8, DataType.FLOAT64),
    /** 32-bit float. */
    F32(4, DataType.FLOAT32),
    /** 16-bit IEEE float. */
    F16(2, DataType.FLOAT16),
    /** bfloat16. */
    BF16(2, DataType.BFLOAT16),
    /** 64-bit integer. */
    I64(8, DataType.INT64),
    /** 32-bit integer. */
    I32(4, DataType.INT32),
    /** 16-bit integer. */
    I16(2, DataType.INT16),
    /** 8-bit integer. */
    I8(1, DataType.INT8),
    /** 8-bit unsigned integer. */
    U8(1, DataType.UINT8),
    /** Boolean, one byte. */
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
