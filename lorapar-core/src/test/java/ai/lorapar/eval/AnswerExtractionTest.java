package ai.lorapar.eval;

import ai.lorapar.data.Example;
import ai.lorapar.eval.AnswerExtraction.Method;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

class AnswerExtractionTest {

    @ParameterizedTest(name = "[{index}] {0}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
        // text | expected | method
        "The answer is 18.                          | 18        | LAST_NUMBER",
        "#### 18                                    | 18        | HASH",
        "She makes 9 * 2 = $18.\\n#### 18            | 18        | HASH",
        "#### 1,200                                 | 1200      | HASH",
        "#### $1,200.00                             | 1200      | HASH",
        "#### -5                                    | -5        | HASH",
        "#### -$5                                   | -5        | HASH",
        "#### $-5                                   | -5        | HASH",
        "#### 3.50                                  | 3.5       | HASH",
        "#### 7.0                                   | 7         | HASH",
        "#### 0.00                                  | 0         | HASH",
        "#### -0                                    | 0         | HASH",
        "#### 12 apples #### 13                     | 12        | HASH",
        "#### 18\\nQuestion: 5 more?                 | 18        | HASH",
        "<answer>\\n42\\n</answer>                    | 42        | ANSWER_TAG",
        "<reasoning>\\n2+2=4\\n</reasoning>\\n<answer>\\n$1,000\\n</answer>\\n | 1000 | ANSWER_TAG",
        "<answer>1</answer> then <answer>2</answer> | 2         | ANSWER_TAG",
        "<answer>\\n-3.25\\n                          | -3.25     | ANSWER_TAG",
        "<answer>forty</answer> #### 40             | 40        | HASH",
        "<answer>none</answer> so 7 it is           | 7         | LAST_NUMBER",
        "#### eighteen, or 18 in digits             | 18        | HASH",
        "5-3 = 2                                    | 2         | LAST_NUMBER",
        "x = -3                                     | -3        | LAST_NUMBER",
        "temperature fell to \u22124 degrees        | -4        | LAST_NUMBER",
        "costs 12,34 euros                          | 34        | LAST_NUMBER",
        "version 1.2.3                              | 1.2       | LAST_NUMBER",
        "it is 100%                                 | 100       | LAST_NUMBER",
        "1,0000                                     | 0         | LAST_NUMBER",
    })
    void extractsTheFinalNumber(String text, String expected, Method method) {
        AnswerExtraction.Extracted x = AnswerExtraction.extract(text.replace("\\n", "\n"));
        assertThat(x.answer()).isEqualTo(expected);
        assertThat(x.method()).isEqualTo(method);
    }

    @Test
    void noNumberIsNone() {
        assertThat(AnswerExtraction.extract("I do not know.")).isEqualTo(new AnswerExtraction.Extracted(null, Method.NONE));
        assertThat(AnswerExtraction.extract("#### ?")).isEqualTo(new AnswerExtraction.Extracted(null, Method.NONE));
        assertThat(AnswerExtraction.extract("")).isEqualTo(new AnswerExtraction.Extracted(null, Method.NONE));
        assertThat(AnswerExtraction.matches(null, "1")).isFalse();
    }

    @Test
    void normalizesWholeNumbersOnly() {
        assertThat(AnswerExtraction.normalize(" $1,200.50 ")).contains("1200.5");
        assertThat(AnswerExtraction.normalize("+7.")).contains("7");
        assertThat(AnswerExtraction.normalize(".5")).contains("0.5");
        assertThat(AnswerExtraction.normalize("-0.0")).contains("0");
        assertThat(AnswerExtraction.normalize("1e3")).isEmpty();
        assertThat(AnswerExtraction.normalize("12 apples")).isEmpty();
        assertThat(AnswerExtraction.normalize("")).isEmpty();
        assertThat(AnswerExtraction.referenceAnswer("so 2 + 2 = 4\n#### 4")).contains("4");
        assertThat(AnswerExtraction.referenceAnswer("no marker 4")).isEmpty();
    }

    /**
     * Every GSM8K problem: its reference answer is the number after {@code ####} (checked against an
     * independent reading of the line: the digits after the marker, commas dropped), extraction of the
     * answer text itself finds it by {@link Method#HASH}, and the same number in the RL format is found by
     * {@link Method#ANSWER_TAG}.
     */
    @Test
    void everyGsm8kReferenceAnswerExtracts() {
        Assumptions.assumeTrue(Gsm8kData.folder() != null, "../shared/data/gsm8k is absent");
        Pattern tail = Pattern.compile("####\\s*(-?[0-9,]+)\\s*$");
        int n = 0;
        for (String file : List.of("train.jsonl", "test.jsonl")) {
            for (Example e : Gsm8kData.read(file)) {
                Matcher m = tail.matcher(e.answer());
                assertThat(m.find()).as("%s line %d ends with #### N", file, e.line()).isTrue();
                String expected = String.valueOf(Long.parseLong(m.group(1).replace(",", "")));
                assertThat(AnswerExtraction.referenceAnswer(e.answer())).as("%s line %d", file, e.line())
                        .contains(expected);
                AnswerExtraction.Extracted self = AnswerExtraction.extract(e.answer());
                assertThat(self.answer()).as("%s line %d", file, e.line()).isEqualTo(expected);
                assertThat(self.method()).isEqualTo(Method.HASH);
                String rl = "<reasoning>\n" + e.answer().substring(0, e.answer().indexOf("####")).strip()
                        + "\n</reasoning>\n<answer>\n" + m.group(1) + "\n</answer>\n";
                assertThat(AnswerExtraction.extract(rl)).as("%s line %d", file, e.line())
                        .isEqualTo(new AnswerExtraction.Extracted(expected, Method.ANSWER_TAG));
                n++;
            }
        }
        assertThat(n).isEqualTo(7473 + 1319);
    }
}
