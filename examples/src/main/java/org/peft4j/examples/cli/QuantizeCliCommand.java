package org.peft4j.examples.cli;

import org.peft4j.quant.QuantizeCommand;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/** {@code peft4j quantize --model DIR --out DIR [--type nf4|fp4|int8] [--block-size 64] [--double-quant]}. */
final class QuantizeCliCommand implements Command {
    @Override
    public String name() {
        return "quantize";
    }

    @Override
    public String summary() {
        return "write a 4-bit (NF4/FP4) or int8 quantized copy of a model folder (a QLoRA base)";
    }

    @Override
    public String usage() {
        return "usage: " + QuantizeCommand.usage() + "\n";
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("model", "out", "type", "block-size");
    }

    @Override
    public Set<String> flagOptions() {
        return Set.of("double-quant");
    }

    @Override
    public void run(Args args, PrintStream out, PrintStream err) throws Exception {
        QuantizeCommand.Summary s = QuantizeCommand.run(Path.of(args.require("model")), Path.of(args.require("out")),
                args.get("type", "nf4"), args.getInt("block-size", 64), args.flag("double-quant"));
        out.println(s.describe());
    }
}
