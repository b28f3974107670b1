package ai.lorapar.gpu;

import static ai.lorapar.gpu.GpuTesting.BF16_ATOL;
import static ai.lorapar.gpu.GpuTesting.BF16_MATMUL_ATOL;
import static ai.lorapar.gpu.GpuTesting.FP32_ATOL;
import static ai.lorapar.gpu.GpuTesting.FP32_MATMUL_ATOL;
import static ai.lorapar.gpu.GpuTesting.checkBf16;
import static ai.lorapar.gpu.GpuTesting.checkFp32;
import static ai.lorapar.gpu.GpuTesting.data;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import ai.lorapar.gpu.GpuTesting.Op;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

/**
 * Pointwise, reduction, shape, matmul and nn ops on the GPU through DJL's NDArray API, in fp32
 * (vs the CPU) and bf16 (vs the CPU fp32 result on bf16-rounded inputs; tolerances in {@link
 * GpuTesting}).
 */
@Tag("gpu")
class GpuOpsTest {

    private static final float[] POS = data(1, 48, 0.5f, 2.0f);
    private static final float[] SYM = data(2, 48, -2.0f, 2.0f);
    private static final float[] UNIT = data(3, 48, -0.9f, 0.9f);
    private static final float[] B = data(4, 48, 0.5f, 2.0f);
    private static final float[] M1 = data(5, 8 * 64, -1f, 1f);
    private static final float[] M2 = data(6, 64 * 16, -1f, 1f);
    private static final float[] BM1 = data(7, 3 * 8 * 32, -1f, 1f);
    private static final float[] BM2 = data(8, 3 * 32 * 4, -1f, 1f);

    private NDManager cpu;
    private NDManager gpu;

    @BeforeEach
    void open() {
        cpu = NDManager.newBaseManager(Device.cpu());
        gpu = NDManager.newBaseManager(Device.gpu());
    }

    @AfterEach
    void close() {
        gpu.close();
        cpu.close();
    }

    private static Arguments op(String name, Op op) {
        return Arguments.of(Named.of(name, op));
    }

    /** Float-valued ops that make sense in both fp32 and bf16. */
    static Stream<Arguments> floatOps() {
        return Stream.of(
                op("abs", in -> in.x(SYM, 6, 8).abs()),
                op("neg", in -> in.x(SYM, 6, 8).neg()),
                op("sqrt", in -> in.x(POS, 6, 8).sqrt()),
                op("exp", in -> in.x(SYM, 6, 8).exp()),
                op("log", in -> in.x(POS, 6, 8).log()),
                op("log2", in -> in.x(POS, 6, 8).log2()),
                op("square", in -> in.x(SYM, 6, 8).square()),
                op("sign", in -> in.x(SYM, 6, 8).sign()),
                op("floor", in -> in.x(SYM, 6, 8).floor()),
                op("ceil", in -> in.x(SYM, 6, 8).ceil()),
                op("sin", in -> in.x(SYM, 6, 8).sin()),
                op("cos", in -> in.x(SYM, 6, 8).cos()),
                op("tan", in -> in.x(UNIT, 6, 8).tan()),
                op("asin", in -> in.x(UNIT, 6, 8).asin()),
                op("acos", in -> in.x(UNIT, 6, 8).acos()),
                op("atan", in -> in.x(SYM, 6, 8).atan()),
                op("sinh", in -> in.x(UNIT, 6, 8).sinh()),
                op("cosh", in -> in.x(UNIT, 6, 8).cosh()),
                op("tanh", in -> in.x(SYM, 6, 8).tanh()),
                op("sigmoid", in -> Activation.sigmoid(in.x(SYM, 6, 8))),
                op("relu", in -> Activation.relu(in.x(SYM, 6, 8))),
                op("gelu", in -> Activation.gelu(in.x(SYM, 6, 8))),
                op("softPlus", in -> Activation.softPlus(in.x(SYM, 6, 8))),
                op("leakyRelu", in -> Activation.leakyRelu(in.x(SYM, 6, 8), 0.1f)),
                op("silu", in -> Activation.swish(in.x(SYM, 6, 8), 1f)),
                op("erf", in -> in.x(SYM, 6, 8).erf()),
                op("clip", in -> in.x(SYM, 6, 8).clip(-0.5, 1.0)),
                op("pow scalar", in -> in.x(POS, 6, 8).pow(2)),
                op("add scalar", in -> in.x(SYM, 6, 8).add(1.5f)),
                op("mul scalar", in -> in.x(SYM, 6, 8).mul(-3f)),
                op("div scalar", in -> in.x(SYM, 6, 8).div(4f)),
                op("add", in -> in.x(SYM, 6, 8).add(in.x(B, 6, 8))),
                op("sub", in -> in.x(SYM, 6, 8).sub(in.x(B, 6, 8))),
                op("mul", in -> in.x(SYM, 6, 8).mul(in.x(B, 6, 8))),
                op("div", in -> in.x(SYM, 6, 8).div(in.x(B, 6, 8))),
                op("pow", in -> in.x(POS, 6, 8).pow(in.x(B, 6, 8))),
                op("maximum", in -> in.x(SYM, 6, 8).maximum(in.x(UNIT, 6, 8))),
                op("minimum", in -> in.x(SYM, 6, 8).minimum(in.x(UNIT, 6, 8))),
                op("atan2", in -> in.x(SYM, 6, 8).atan2(in.x(B, 6, 8))),
                op("broadcast add", in -> in.x(SYM, 6, 8).add(in.x(B, 1, 8).get("0:1, :"))),
                op("addi", in -> in.x(SYM, 6, 8).addi(in.x(B, 6, 8))),
                op("subi", in -> in.x(SYM, 6, 8).subi(in.x(B, 6, 8))),
                op("muli", in -> in.x(SYM, 6, 8).muli(in.x(B, 6, 8))),
                op("divi", in -> in.x(SYM, 6, 8).divi(in.x(B, 6, 8))),
                op("negi", in -> in.x(SYM, 6, 8).negi()),
                op("where", in -> NDArrays.where(in.x(SYM, 6, 8).gt(0), in.x(SYM, 6, 8), in.x(B, 6, 8))),
                op("sum", in -> in.x(SYM, 6, 8).sum()),
                op("sum axis", in -> in.x(SYM, 6, 8).sum(new int[] {1})),
                op("sum axes keepDims", in -> in.x(SYM, 2, 3, 8).sum(new int[] {0, 2}, true)),
                op("mean", in -> in.x(SYM, 6, 8).mean()),
                op("mean axis", in -> in.x(SYM, 6, 8).mean(new int[] {0})),
                op("max", in -> in.x(SYM, 6, 8).max()),
                op("max axis", in -> in.x(SYM, 6, 8).max(new int[] {1})),
                op("min axis keepDims", in -> in.x(SYM, 6, 8).min(new int[] {0}, true)),
                op("prod axis", in -> in.x(POS, 6, 8).prod(new int[] {0})),
                op("cumSum", in -> in.x(SYM, 6, 8).cumSum(1)),
                op("cumProd", in -> in.x(POS, 6, 8).cumProd(1)),
                op("norm", in -> in.x(SYM, 6, 8).norm()),
                op("norm axis", in -> in.x(SYM, 6, 8).norm(new int[] {1})),
                op("softmax", in -> in.x(SYM, 6, 8).softmax(-1)),
                op("logSoftmax", in -> in.x(SYM, 6, 8).logSoftmax(1)),
                op("transpose", in -> in.x(SYM, 6, 8).transpose()),
                op("permute", in -> in.x(SYM, 2, 3, 8).transpose(2, 0, 1)),
                op("swapAxes", in -> in.x(SYM, 2, 3, 8).swapAxes(0, 2)),
                op("reshape", in -> in.x(SYM, 6, 8).reshape(4, -1)),
                op("flatten", in -> in.x(SYM, 2, 3, 8).flatten()),
                op("expandDims+squeeze", in -> in.x(SYM, 6, 8).expandDims(1).squeeze(1)),
                op("broadcast", in -> in.x(SYM, 1, 48).broadcast(new Shape(3, 48))),
                op("tile", in -> in.x(SYM, 6, 8).tile(new long[] {2, 1})),
                op("repeat", in -> in.x(SYM, 6, 8).repeat(1, 2)),
                op("flip", in -> in.x(SYM, 6, 8).flip(0, 1)),
                op("pad", in -> in.x(SYM, 6, 8).pad(new Shape(1, 2), 0.5)),
                op("concat", in -> in.x(SYM, 6, 8).concat(in.x(B, 6, 8), 1)),
                op("stack", in -> in.x(SYM, 6, 8).stack(in.x(B, 6, 8), 0)),
                op("split sections", in -> in.x(SYM, 6, 8).split(3, 0).get(1)),
                op("split indices", in -> in.x(SYM, 6, 8).split(new long[] {1, 5}, 1).get(2)),
                op("sort", in -> in.x(SYM, 6, 8).sort(1)),
                op("dropout eval", in -> ai.djl.nn.norm.Dropout.dropout(in.x(SYM, 6, 8), 0.5f, false).head()));
    }

    /** Products and nn functionals (larger accumulations: matmul tolerances). */
    static Stream<Arguments> matmulOps() {
        return Stream.of(
                op("matMul", in -> in.x(M1, 8, 64).matMul(in.x(M2, 64, 16))),
                op("batchMatMul", in -> in.x(BM1, 3, 8, 32).batchMatMul(in.x(BM2, 3, 32, 4))),
                op("dot 1d", in -> in.x(M1, 512).get("0:64").dot(in.x(M2, 1024).get("0:64"))),
                op("linear", in -> Linear.linear(in.x(M1, 8, 64), in.x(M2, 16, 64), in.x(SYM, 48).get("0:16")).head()),
                op("linear no bias", in -> Linear.linear(in.x(M1, 8, 64), in.x(M2, 16, 64)).head()),
                op("layerNorm", in -> LayerNorm.layerNorm(in.x(M1, 8, 64), new Shape(64), in.x(M2, 1024).get("0:64"), in.x(M2, 1024).get("64:128"), 1e-5f).head()));
    }

    /** Ops whose outputs are integers or booleans (fp32 inputs with distinct values). */
    static Stream<Arguments> discreteOps() {
        return Stream.of(
                op("argMax", in -> in.x(SYM, 6, 8).argMax()),
                op("argMax axis", in -> in.x(SYM, 6, 8).argMax(1)),
                op("argMin axis", in -> in.x(SYM, 6, 8).argMin(0)),
                op("argSort", in -> in.x(SYM, 6, 8).argSort(1)),
                op("argSort descending", in -> in.x(SYM, 6, 8).argSort(1, false)),
                op("topK values", in -> in.x(SYM, 6, 8).topK(3, 1).get(0)),
                op("topK indices", in -> in.x(SYM, 6, 8).topK(3, 1, true, true).get(1)),
                op("eq", in -> in.x(SYM, 6, 8).floor().eq(in.x(B, 6, 8).floor())),
                op("neq", in -> in.x(SYM, 6, 8).floor().neq(in.x(B, 6, 8).floor())),
                op("gt", in -> in.x(SYM, 6, 8).gt(in.x(UNIT, 6, 8))),
                op("gte", in -> in.x(SYM, 6, 8).gte(0.25f)),
                op("lt", in -> in.x(SYM, 6, 8).lt(in.x(UNIT, 6, 8))),
                op("lte", in -> in.x(SYM, 6, 8).lte(0.25f)),
                op("logicalAnd", in -> in.x(SYM, 6, 8).gt(0).logicalAnd(in.x(UNIT, 6, 8).gt(0))),
                op("logicalOr", in -> in.x(SYM, 6, 8).gt(0).logicalOr(in.x(UNIT, 6, 8).gt(0))),
                op("logicalXor", in -> in.x(SYM, 6, 8).gt(0).logicalXor(in.x(UNIT, 6, 8).gt(0))),
                op("logicalNot", in -> in.x(SYM, 6, 8).gt(0).logicalNot()),
                op("all/any", in -> in.x(SYM, 6, 8).gt(-5).all().logicalAnd(in.x(SYM, 6, 8).gt(1.9f).any())),
                op("isNaN/isInfinite", in -> in.x(SYM, 6, 8).log().isNaN().logicalOr(in.x(SYM, 6, 8).div(0).isInfinite())),
                op("oneHot", in -> in.x(POS, 48).floor().toType(ai.djl.ndarray.types.DataType.INT64, false).oneHot(3)),
                op("countNonzero", in -> in.x(SYM, 6, 8).gt(0).countNonzero()));
    }

    @ParameterizedTest(name = "fp32 {0}")
    @MethodSource({"floatOps", "discreteOps"})
    void fp32MatchesCpu(Op op) {
        checkFp32(op.toString(), cpu, gpu, op, FP32_ATOL);
    }

    @ParameterizedTest(name = "fp32 {0}")
    @MethodSource("matmulOps")
    void fp32ProductsMatchCpu(Op op) {
        checkFp32(op.toString(), cpu, gpu, op, FP32_MATMUL_ATOL);
    }

    @ParameterizedTest(name = "bf16 {0}")
    @MethodSource("floatOps")
    void bf16MatchesCpuWithinTolerance(Op op) {
        checkBf16(op.toString(), cpu, gpu, op, BF16_ATOL);
    }

    @ParameterizedTest(name = "bf16 {0}")
    @MethodSource("matmulOps")
    void bf16ProductsMatchCpuWithinTolerance(Op op) {
        checkBf16(op.toString(), cpu, gpu, op, BF16_MATMUL_ATOL);
    }
}
