package org.peft4j.core.model.generate;

import java.util.Arrays;

/**
 * The tokens generated for each prompt (prompt excluded). A row that emitted a stop token ends
 * with it and is shorter than {@code maxNewTokens}; {@code stopped[b]} says so.
 */
public record GenerationResult(int[][] tokens, boolean[] stopped) {

    public int batchSize() {
        return tokens.length;
    }

    /** The generated tokens of row {@code b}. */
    public int[] tokens(int b) {
        return tokens[b].clone();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("GenerationResult[");
        for (int b = 0; b < tokens.length; b++) {
            sb.append(b == 0 ? "" : ", ").append(Arrays.toString(tokens[b])).append(stopped[b] ? "(stop)" : "");
        }
        return sb.append(']').toString();
    }
}
