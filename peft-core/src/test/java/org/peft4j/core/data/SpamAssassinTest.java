package org.peft4j.core.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The spam e-mails' tarball layout (one JSON per message, the group naming ham or spam), on a small archive. */
class SpamAssassinTest {
    private static byte[] msg(String group, String text) {
        return ("{\"id\":\"00001\",\"group\":\"" + group + "\",\"checksum\":{\"type\":\"MD5\",\"value\":\"x\"},\"text\":"
                + com.fasterxml.jackson.databind.node.TextNode.valueOf(text) + "}").getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void readsMessagesWithSubjectAndBody(@TempDir Path tmp) throws Exception {
        Path tgz = tmp.resolve("spam.tgz");
        new TestTar()
                .file("package/package.json", "{}".getBytes(StandardCharsets.UTF_8))
                .file("package/data/spam-1/00001.abc.json", msg("spam-1", "From: a@b\nSubject: WIN  money\nX-Y: z\n\nClick\n  now"))
                .file("package/data/spam-1/00001.abc.txt", "raw".getBytes(StandardCharsets.UTF_8))
                .file("package/data/easy-ham-1/00002.def.json", msg("easy-ham-1", "Subject: meeting\r\n\r\nsee you at 10"))
                .writeTgz(tgz);
        List<TextExample> got = SpamAssassin.readTarball(tgz, 2);
        assertEquals(List.of(new TextExample("WIN money. Click now", 1), new TextExample("meeting. see you at 10", 0)), got);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SpamAssassin.readTarball(tgz));
        assertTrue(e.getMessage().contains("expected 6046 messages, found 2"), e.getMessage());
        Path bad = tmp.resolve("bad.tgz");
        new TestTar().file("package/data/spam-1/x.json", "{\"group\": \"spam-1\"}".getBytes(StandardCharsets.UTF_8)).writeTgz(bad);
        e = assertThrows(IllegalArgumentException.class, () -> SpamAssassin.readTarball(bad, 1));
        assertTrue(e.getMessage().contains("package/data/spam-1/x.json") && e.getMessage().contains("'text'"), e.getMessage());
    }
}
