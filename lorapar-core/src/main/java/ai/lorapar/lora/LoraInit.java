package ai.lorapar.lora;

/** How a LoRA adapter's A ({@code r × in}) and B ({@code out × r}) start. */
public enum LoraInit {
    /**
     * PEFT's default: A Kaiming-uniform ({@code kaiming_uniform_(a=√5)}, i.e. U(−1/√in, 1/√in)), B = 0.
     * The adapter starts as the identity map, but every LoRA-PAR importance is then exactly 0.
     */
    STANDARD,
    /**
     * A and B both drawn from N(0, σ) ({@link LoraConfig#gaussianStd()}, 0.01 by default), as the
     * LoRA-PAR reference does so that importance is non-zero. The base weights stay unchanged, so the
     * model's output moves slightly at step 0.
     */
    GAUSSIAN,
    /**
     * PiSSA: A and B from the top-r singular triplets of W (PEFT's convention: S_r divided by the
     * scaling, A = diag(√S_r)·V_rᵀ, B = U_r·diag(√S_r)) and W replaced by its residual
     * W − scaling·B·A. Exported as an equivalent rank-2r plain LoRA against the original W.
     */
    PISSA,
    /**
     * OLoRA: A = R_r and B = Q_r from W's QR decomposition, W replaced by W − scaling·B·A. Exported as
     * an equivalent rank-2r plain LoRA against the original W.
     */
    OLORA;

    /** Whether this initialisation rewrites the base weight (PiSSA, OLoRA). */
    public boolean modifiesBase() {
        return this == PISSA || this == OLORA;
    }
}
