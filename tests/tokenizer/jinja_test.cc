// Unit tests of the Jinja interpreter behind chat templates. Every expected string is derived by hand from jinja2's
// documented semantics with Hugging Face's settings (trim_blocks, lstrip_blocks, Python value printing,
// transformers' tojson), not from whale's own output.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/tokenizer/chat_template.h"

namespace whale {
namespace {

using nlohmann::json;

std::string render(const std::string& source, const json& context = json::object()) {
  return render_jinja(source, context);
}

// The message of the Error that rendering throws ("" if it does not throw).
std::string error_of(const std::string& source, const json& context = json::object()) {
  try {
    render_jinja(source, context);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string fixture(const std::string& name) {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "templates" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- text and whitespace control ----

TEST(JinjaSyntax, TextOutputAndComments) {
  EXPECT_EQ(render("hello"), "hello");
  EXPECT_EQ(render("a {{ 1 }} b"), "a 1 b");
  EXPECT_EQ(render("a{# a comment {{ x }} #}b"), "ab");
  EXPECT_EQ(render(""), "");
  EXPECT_EQ(render("{ not a tag } {x}"), "{ not a tag } {x}");
}

TEST(JinjaSyntax, NewlinesAreNormalizedAndOneTrailingNewlineDropped) {
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaSyntax, MinusStripsAllWhitespaceOnThatSide) {
  EXPECT_EQ(render("a  \n {{- 1 -}} \n  b"), "a1b");
  EXPECT_EQ(render("a \n {%- if true -%} \n x \n {%- endif -%} \n b"), "axb");
  EXPECT_EQ(render("a \n {#- c -#} \n b"), "ab");
  EXPECT_EQ(render("a {{ 1 -}}\n\n b"), "a 1b");
}

TEST(JinjaSyntax, TrimBlocksDropsOneNewlineAfterBlockAndCommentTags) {
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny"), "x\ny");
  EXPECT_EQ(render("{# c #}\n\nz"), "\nz");
  EXPECT_EQ(render("{{ 1 }}\nz"), "1\nz");  // not after variables
}

TEST(JinjaSyntax, LstripBlocksRemovesIndentationBeforeBlockTags) {
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\ny"), "  x\ny");
  EXPECT_EQ(render("\t {# c #}\nz"), "z");
  EXPECT_EQ(render("  {{ 1 }}"), "  1");                           // not before variables
  EXPECT_EQ(render("a  {% if true %}b{% endif %}"), "a  b");        // only at the start of a line
  EXPECT_EQ(render("{% if true %}  {% endif %}|"), "  |");          // the tag did not end a line
  EXPECT_EQ(render("{% if true %}\n  {% endif %}|"), "|");          // trim_blocks ended the line
}

TEST(JinjaSyntax, PlusDisablesLstripAndTrim) {
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
}

TEST(JinjaSyntax, RawBlocks) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
  EXPECT_EQ(render("a {%- raw -%} b {%- endraw %}"), "ab");
}

// ---- expressions ----

TEST(JinjaExpressions, LiteralsPrintLikePython) {
  EXPECT_EQ(render("{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ 42 }}|{{ -7 }}"), "None|None|True|False|42|-7");
  EXPECT_EQ(render("{{ 1.0 }}|{{ 2.5 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 0.0001 }}|{{ 123456789.0 }}"),
            "1.0|2.5|1e+20|1e-05|0.0001|123456789.0");
  EXPECT_EQ(render("{{ 0.1 + 0.2 }}|{{ 1 / 3 }}"), "0.30000000000000004|0.3333333333333333");
  EXPECT_EQ(render("{{ [1, 'a', none, true, 1.5] }}|{{ {'a': 1, 'b': [2]} }}|{{ (1,) }}|{{ (1, 2) }}|{{ [] }}"),
            "[1, 'a', None, True, 1.5]|{'a': 1, 'b': [2]}|(1,)|(1, 2)|[]");
  EXPECT_EQ(render(R"({{ ["it's", 'say "hi"', 'both \' "', 'nl\n'] }})"),
            R"(["it's", 'say "hi"', 'both \' "', 'nl\n'])");
  EXPECT_EQ(render("{{ 1_000 }} {{ 0x1f }} {{ 0b101 }} {{ 0o17 }} {{ 1.5e3 }}"), "1000 31 5 15 1500.0");
}

TEST(JinjaExpressions, StringLiterals) {
  EXPECT_EQ(render(R"({{ 'a\'b' }}|{{ "c\"d" }}|{{ 'x\ty' }}|{{ 'line\nbreak' }}|{{ '\u00e9\x41\101' }})"),
            "a'b|c\"d|x\ty|line\nbreak|\xC3\xA9" "AA");
  EXPECT_EQ(render(R"({{ 'back\\slash' }}|{{ 'keep \q' }}|{{ 'a' "b" 'c' }})"), "back\\slash|keep \\q|abc");
  EXPECT_EQ(render("{{ 'multi\nline' }}"), "multi\nline");
}

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 2 }}"), "3 -4 1 2 3.5 3.0");
  EXPECT_EQ(render("{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }}"), "1024 0.5 64 4");
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}"),
            "7 9 5 3.0 0.5");
  EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [0] * 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }} {{ true + 1 }}"),
            "ababab [0, 0] [1, 2] ab 2");
}

TEST(JinjaExpressions, ConcatBindsTighterThanPlus) {
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true }}|{{ 'x' ~ missing ~ 'y' }}"), "a1NoneTrue|xy");
  EXPECT_NE(error_of("{{ 1 ~ 2 + 3 }}"), "");  // ('12') + 3 is a TypeError
}

TEST(JinjaExpressions, ComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }}"),
            "True False True True True");
  EXPECT_EQ(render("{{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ none == none }} {{ [1] == (1,) }}"),
            "True True True False");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1, 2] }} {{ 1 in x }}"),
            "True True True True False");
}

TEST(JinjaExpressions, BooleanOperatorsReturnOperands) {
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ none or [] }} {{ 0 and missing.attr }}"), "x b [] 0");
  EXPECT_EQ(render("{{ not none }} {{ not 'a' }} {{ not 1 == 2 }} {{ not not [] }}"), "True False True False");
}

TEST(JinjaExpressions, InlineIf) {
  EXPECT_EQ(render("{{ 'y' if 1 else 'n' }}{{ 'y' if 0 else 'n' }}[{{ 'y' if 0 }}]{{ 1 if 0 else 2 if 0 else 3 }}"),
            "yn[]3");
}

TEST(JinjaExpressions, AttributesSubscriptsAndUndefined) {
  const json ctx = {{"d", {{"a", {{"b", {10, 20, 30}}}}}}, {"s", "héllo"}};
  EXPECT_EQ(render("{{ d.a.b[1] }} {{ d['a']['b'][-1] }} {{ d.a.b.0 }} [{{ d.missing }}] [{{ d.a.b[7] }}]", ctx),
            "20 30 10 [] []");
  EXPECT_EQ(render("{{ x is defined }} {{ x is undefined }} {% if x %}t{% else %}f{% endif %} [{{ x }}]"),
               "False True f []");
  EXPECT_EQ(render("{{ d.missing is defined }} {{ d.a is defined }} [{{ s.nope }}] [{{ none.nope }}]", ctx),
            "False True [] []");
  EXPECT_EQ(render("{{ s[1] }} {{ s[-1] }}", ctx), "é o");
}

TEST(JinjaExpressions, Slices) {
  EXPECT_EQ(render("{{ [1, 2, 3, 4][1:3] }} {{ [1, 2, 3, 4][::-1] }} {{ [1, 2, 3][:-1] }} {{ [1, 2, 3][5:] }}"),
            "[2, 3] [4, 3, 2, 1] [1, 2] []");
  EXPECT_EQ(render("{{ 'hello'[-3:] }} {{ 'hello'[::2] }} {{ 'héllo'[:2] }} {{ 'abc'[::-1] }} {{ (1, 2, 3)[1:] }}"),
            "llo hlo hé cba (2, 3)");
  EXPECT_EQ(render("{{ [1, 2, 3, 4, 5][4:0:-2] }} {{ [1, 2, 3][-10:2] }}"), "[5, 3] [1, 2]");
}

TEST(JinjaExpressions, ListsDictsAndTuples) {
  EXPECT_EQ(render("{{ [1, [2, 3]]|length }} {{ {'a': 1, 'b': 2}|length }} {{ [1, 2,]|length }}"), "2 2 2");
  EXPECT_EQ(render("{% set t = 1, 2 %}{{ t }} {{ (3, 4)[1] }} {{ {'k': {'n': 'v'}}.k.n }}"), "(1, 2) 4 v");
}

// ---- statements ----

TEST(JinjaStatements, IfElifElse) {
  const std::string t = "{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three{% else %}many{% endif %}";
  EXPECT_EQ(render(t, {{"n", 1}}), "one");
  EXPECT_EQ(render(t, {{"n", 3}}), "three");
  EXPECT_EQ(render(t, {{"n", 9}}), "many");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ x }};{% endfor %}"),
            "10TrueFalse332a;21FalseFalse321b;32FalseTrue310c;");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}{{ loop.nextitem }},"
                   "{% endfor %}"),
            "a2,b13,a2,");
}

TEST(JinjaStatements, ForElseFilterAndUnpacking) {
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in missing %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(render("{% for x in range(6) if x is odd %}{{ x }}{{ loop.last }}{% endfor %}"), "1False3False5True");
  EXPECT_EQ(render("{% for x in [0] if x %}x{% else %}filtered{% endfor %}"), "filtered");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", {{"d", {{"a", 1}, {"b", 2}}}}),
            "a=1,b=2,");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}|{% for c in 'hé' %}[{{ c }}]{% endfor %}",
                   {{"d", {{"a", 1}, {"b", 2}}}}),
            "ab|[h][é]");
  EXPECT_EQ(render("{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}"), "37");
}

TEST(JinjaStatements, LoopBodyScopeDoesNotLeak) {
  EXPECT_EQ(render("{% set y = 5 %}{% for i in [1, 2] %}{{ y }}{% set y = i %}{% endfor %}{{ y }}"), "555");
  EXPECT_EQ(render("{% for i in [1, 2] %}{% if i == 2 %}[{{ z }}]{% endif %}{% set z = i %}{% endfor %}"), "[]");
  EXPECT_EQ(render("{% if true %}{% set w = 1 %}{% endif %}{{ w }}"), "1");  // if shares its scope
}

TEST(JinjaStatements, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(render("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                   "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }} {{ ns.missing is defined }}"),
            "6 0123 False");
  EXPECT_NE(error_of("{% set d = {} %}{% set d.x = 1 %}"), "");
}

TEST(JinjaStatements, SetForms) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set x %}a{{ 1 }}b{% endset %}[{{ x }}]"), "[a1b]");
  EXPECT_EQ(render("{% set x | upper %}ab{% endset %}{{ x }}"), "AB");
}

TEST(JinjaStatements, BreakAndContinue) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
                   "{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "0134");
}

TEST(JinjaStatements, Macros) {
  const std::string m = "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}";
  EXPECT_EQ(render(m + "{{ greet('Ann') }} {{ greet('Bob', greeting='Hi') }} {{ greet('Cy', 'Yo') }}"),
            "Hello, Ann! Hi, Bob! Yo, Cy!");
  EXPECT_EQ(render("{% macro f(n) %}{{ n }}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "3210");
  EXPECT_EQ(render("{% macro v() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, 2, a=3) }}"), "(1, 2){'a': 3}");
  EXPECT_EQ(render("{% macro m() %}{{ late }}{% endmacro %}{% set late = 'seen' %}{{ m() }}"), "seen");
  EXPECT_NE(error_of(m + "{{ greet(1, 2, 3) }}"), "");
}

TEST(JinjaStatements, CallAndFilterBlocks) {
  EXPECT_EQ(render("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner{% endcall %}"), "<inner>");
  EXPECT_EQ(render("{% macro twice(x) %}{{ caller(x) }}{{ caller(x * 2) }}{% endmacro %}"
                   "{% call(v) twice(3) %}[{{ v }}]{% endcall %}"),
            "[3][6]");
  EXPECT_EQ(render("{% filter upper %}abc {{ 'd' }}{% endfilter %}"), "ABC D");
  EXPECT_EQ(render("{% generation %}kept{% endgeneration %}"), "kept");
}

// ---- filters ----

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("{{ '  a b  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ none|trim }}|{{ missing|trim }}|"), "a b|a|None||");
  EXPECT_EQ(render("{{ 'AbC'|lower }} {{ 'AbC'|upper }} {{ 'hELLO wORLD'|capitalize }} {{ 'hello big-world'|title }}"),
            "abc ABC Hello world Hello Big-World");
  EXPECT_EQ(render("{{ 'aaa'|replace('a', 'b', 2) }} {{ 'a.b'|replace('.', '') }}"), "bba ab");
  EXPECT_EQ(render("{{ 42|string ~ 'x' }} {{ none|string }} {{ true|string }} {{ [1]|string }}"), "42x None True [1]");
  EXPECT_EQ(render(R"({{ '<a href="x">&'|escape }})"), "&lt;a href=&#34;x&#34;&gt;&amp;");
  EXPECT_EQ(render("{{ '%s=%d'|format('x', 3) }} {{ 'one two  three'|wordcount }}"), "x=3 3");
}

TEST(JinjaFilters, Indent) {
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc'|indent(2) }}"), "a\n  b\n\n  c");
  EXPECT_EQ(render("{{ 'a\\nb'|indent(2, first=true) }}"), "  a\n  b");
  EXPECT_EQ(render("{{ 'a\\n\\nb'|indent(2, blank=true) }}"), "a\n  \n  b");
  EXPECT_EQ(render("{{ 'a\\nb'|indent }}"), "a\n    b");
  EXPECT_EQ(render("{{ 'a\\n'|indent }}"), "a\n");
}

TEST(JinjaFilters, LengthAndConversions) {
  EXPECT_EQ(render("{{ 'héllo'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ missing|length }}"), "5 2 1 0");
  EXPECT_EQ(render("{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ true|int }}"),
            "42 4 0 7 3 1");
  EXPECT_EQ(render("{{ '2.5'|float }} {{ 3|float }} {{ 'x'|float }} {{ ' 7 '|int }}"), "2.5 3.0 0.0 7");
  EXPECT_EQ(render("{{ 'ab'|list }} {{ (1, 2)|list }} {{ {'k': 1}|list }}"), "['a', 'b'] [1, 2] ['k']");
}

TEST(JinjaFilters, Tojson) {
  EXPECT_EQ(render(R"({{ {'a': [1, 2.5, none, true], 'b': 'é"\n<'}|tojson }})"),
            R"({"a": [1, 2.5, null, true], "b": "é\"\n<"})");
  EXPECT_EQ(render("{{ [1, {'k': []}]|tojson(indent=2) }}"), "[\n  1,\n  {\n    \"k\": []\n  }\n]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [1, [2]]|tojson(separators=(',', ':')) }}"),
            R"({"a": 2, "b": 1} [1,[2]])");
  EXPECT_EQ(render("{{ 'é'|tojson(ensure_ascii=true) }} {{ '\\u0001'|tojson }}"), R"("\u00e9" "\u0001")");
  EXPECT_NE(error_of("{{ missing|tojson }}"), "");
}

TEST(JinjaFilters, Sequences) {
  EXPECT_EQ(render("{{ [3, 4, 5]|first }} {{ [3, 4, 5]|last }} {{ 'abc'|first }} [{{ []|first }}]"), "3 5 a []");
  EXPECT_EQ(render("{{ [1, 'a', none]|join('-') }} {{ ['x', 'y']|join }} {{ d|join(',', attribute='n') }}",
                   {{"d", {{{"n", 1}}, {{"n", 2}}}}}),
            "1-a-None xy 1,2");
  EXPECT_EQ(render("{{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }}"), "[3, 2, 1] cba");
  EXPECT_EQ(render("{{ [3, 1, 2]|sort }} {{ ['b', 'C', 'a']|sort }} {{ ['b', 'C', 'a']|sort(case_sensitive=true) }} "
                   "{{ [3, 1, 2]|sort(reverse=true) }} {{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}"),
            "[1, 2, 3] ['a', 'b', 'C'] ['C', 'a', 'b'] [3, 2, 1] [{'n': 1}, {'n': 2}]");
  EXPECT_EQ(render("{{ ['a', 'A', 'b', 'a']|unique|list }} {{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} "
                   "{{ [1, 2, 3]|sum }} {{ ['b', 'A']|min }}"),
            "['a', 'b'] 1 3 6 A");
  EXPECT_EQ(render("{% for k, v in {'b': 1, 'a': 2}|items %}{{ k }}{{ v }}{% endfor %} "
                   "{{ {'b': 1, 'a': 2}|dictsort }}"),
            "b1a2 [('a', 2), ('b', 1)]");
}

TEST(JinjaFilters, DefaultAbsRound) {
  EXPECT_EQ(render("{{ missing|default('dflt') }} {{ missing|d('d2') }} [{{ ''|default('e') }}] "
                   "{{ ''|default('e', true) }} {{ none|default('n') }}"),
            "dflt d2 [] e None");
  EXPECT_EQ(render("{{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} "
                   "{{ 2.1|round(0, 'ceil') }} {{ 2.9|round(0, 'floor') }} {{ 7|round }}"),
            "3 2.5 2.0 4.0 2.67 3.0 2.0 7");
}

TEST(JinjaFilters, SelectRejectAndMap) {
  const json ctx = {{"msgs", {{{"role", "system"}, {"content", "s"}},
                              {{"role", "user"}, {"content", "u"}},
                              {{"role", "user"}, {"content", "v"}}}}};
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}", ctx),
            "u,v");
  EXPECT_EQ(render("{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|list }}", ctx), "['s']");
  EXPECT_EQ(render("{{ msgs|map(attribute='missing', default='-')|join }} {{ msgs|selectattr('nope')|list }}", ctx),
            "--- []");
  EXPECT_EQ(render("{{ ['a', 'b']|map('upper')|list }} {{ range(6)|select('even')|list }} "
                   "{{ range(6)|reject('odd')|list }} {{ [0, 1, '', 'x']|select|list }}"),
            "['A', 'B'] [0, 2, 4] [0, 2, 4] [1, 'x']");
}

// ---- tests ----

TEST(JinjaTests, BuiltinTests) {
  EXPECT_EQ(render("{{ none is none }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} "
                   "{{ 1.5 is integer }} {{ 1.5 is float }}"),
            "True True True True True False True");
  EXPECT_EQ(render("{{ 'a' is string }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} "
                   "{{ 'a' is iterable }} {{ 1 is iterable }} {{ [] is sequence }}"),
            "True True False True True False True");
  EXPECT_EQ(render("{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }}"),
            "True False True False True");
  EXPECT_EQ(render("{{ 3 is odd }} {{ 3 is even }} {{ 6 is divisibleby 3 }} {{ 1 is equalto 1 }} {{ 1 is eq 2 }} "
                   "{{ 2 is gt 1 }} {{ 1 is in [1] }} {{ x is not defined }} {{ x is sameas none }}"),
            "True False True True False True True True False");
  EXPECT_EQ(render("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ range is callable }}"), "True True True");
}

// ---- Python methods ----

TEST(JinjaMethods, StringMethods) {
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a-b-c'.split('-', 1) }} "
                   "{{ 'a-b-c'.rsplit('-', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b-c'] ['a-b', 'c']");
  EXPECT_EQ(render("{{ 'xxhixx'.strip('x') }}|{{ '  hi '.lstrip() }}|{{ '  hi '.rstrip() }}|{{ ' h '.strip() }}"),
            "hi|hi |  hi|h");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'aXa'.replace('a', 'b') }} "
                   "{{ 'Hi'.upper() }} {{ 'Hi'.lower() }} {{ \"it's a test\".title() }} {{ 'hI'.capitalize() }}"),
            "True True bXb HI hi It'S A Test Hi");
  EXPECT_EQ(render("{{ 'abcb'.find('b') }} {{ 'abc'.find('z') }} {{ 'abcb'.rfind('b') }} {{ 'abcb'.count('b') }} "
                   "{{ '-'.join(['a', 'b']) }} {{ '{} + {}'.format(1, 2) }} {{ 'a\\nb'.splitlines() }}"),
            "1 -1 3 2 a-b 1 + 2 ['a', 'b']");
  // The R1 template keeps what follows the last </think>.
  EXPECT_EQ(render("{{ 'a</think>b</think>c'.split('</think>')[-1] }}"), "c");
}

TEST(JinjaMethods, DictAndListMethods) {
  const json ctx = {{"d", {{"a", 1}, {"b", 2}}}};
  EXPECT_EQ(render("{{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} "
                   "{{ d.get('z') }} {{ d.get('z', 0) }}",
                   ctx),
            "[('a', 1), ('b', 2)] ['a', 'b'] [1, 2] 1 None 0");
  EXPECT_EQ(render("{{ [1, 2, 2].count(2) }} {{ [5, 6].index(6) }}"), "2 1");
}

TEST(JinjaGlobals, RangeNamespaceDict) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(3, 0, -1)|list }}"),
            "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
  EXPECT_EQ(render("{{ dict(a=1) }} {{ namespace(a=1).a }}"), "{'a': 1} 1");
}

// ---- errors ----

TEST(JinjaErrors, SyntaxErrorNamesLineAndColumn) {
  const std::string e = error_of("line one\n{{ 1 + }}");
  EXPECT_EQ(e.rfind("chat template line 2 col 8: ", 0), 0u) << e;
  EXPECT_EQ(error_of("{{ 'abc }}"), "chat template line 1 col 4: unterminated string literal");
  EXPECT_EQ(error_of("{% if true %}x"),
            "chat template line 1 col 1: unexpected end of template: the 'if' block is not closed");
  EXPECT_EQ(error_of("{{ (1 }}").rfind("chat template line 1 col ", 0), 0u);
  EXPECT_EQ(error_of("{# never closed").rfind("chat template line 1 col 1: ", 0), 0u);
}

TEST(JinjaErrors, UnknownTag) {
  EXPECT_EQ(error_of("{% foo %}"), "chat template line 1 col 4: unknown tag 'foo'");
  EXPECT_EQ(error_of("{% if x %}\n  {% endfor %}"),
            "chat template line 2 col 6: unknown tag 'endfor' inside the 'if' block");
  EXPECT_EQ(error_of("{% break %}"), "chat template line 1 col 4: 'break' outside of a loop");
}

TEST(JinjaErrors, RaiseException) {
  EXPECT_EQ(error_of("ok\n{{ raise_exception('Bad role: ' ~ r) }}", {{"r", "tool"}}),
            "chat template line 2 col 4: Bad role: tool");
  EXPECT_THROW(render_chat_template("{{ raise_exception('x') }}", json::array(), false, "", ""), Error);
}

TEST(JinjaErrors, RuntimeErrors) {
  EXPECT_EQ(error_of("{{ missing + 1 }}"), "chat template line 1 col 12: 'missing' is undefined");
  EXPECT_EQ(error_of("{{ a.b.c }}", {{"a", json::object()}}),
            "chat template line 1 col 7: 'dict object' has no attribute 'b'");
  EXPECT_EQ(error_of("{{ 1|nope }}"), "chat template line 1 col 6: no filter named 'nope'");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "chat template line 1 col 8: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "chat template line 1 col 6: integer division or modulo by zero");
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), "");  // unbounded recursion is an error
}

// ---- chat templates (deepseek-spec §5.2) ----

const json kSpecConversation = json::array({
    {{"role", "system"}, {"content", "You are a helpful assistant."}},
    {{"role", "user"}, {"content", "What is 2+2?"}},
    {{"role", "assistant"}, {"content", "<think>\nSimple arithmetic.\n</think>\n\n2+2 = 4."}},
    {{"role", "user"}, {"content", "And 3+3?"}},
});
const std::string kBos = "<｜begin▁of▁sentence｜>";
const std::string kEos = "<｜end▁of▁sentence｜>";

TEST(JinjaChatTemplate, R1SpecExample) {
  EXPECT_EQ(render_chat_template(fixture("deepseek_r1.jinja"), kSpecConversation, true, kBos, kEos),
            kBos + "You are a helpful assistant.<｜User｜>What is 2+2?<｜Assistant｜>\n\n2+2 = 4." + kEos +
                "<｜User｜>And 3+3?<｜Assistant｜><think>\n");
}

TEST(JinjaChatTemplate, V3KeepsHistoryVerbatim) {
  EXPECT_EQ(render_chat_template(fixture("deepseek_v3.jinja"), kSpecConversation, true, kBos, kEos),
            kBos + "You are a helpful assistant.<｜User｜>What is 2+2?<｜Assistant｜><think>\nSimple arithmetic.\n"
                   "</think>\n\n2+2 = 4." + kEos + "<｜User｜>And 3+3?<｜Assistant｜>");
}

TEST(JinjaChatTemplate, V2Format) {
  // deepseek-spec §5.2: <bos>{system}\n\nUser: {u1}\n\nAssistant: {a1}<eos>User: {u2}\n\nAssistant:
  const json conversation = json::array({{{"role", "system"}, {"content", "S"}},
                                         {{"role", "user"}, {"content", "U1"}},
                                         {{"role", "assistant"}, {"content", "A1"}},
                                         {{"role", "user"}, {"content", "U2"}}});
  EXPECT_EQ(render_chat_template(fixture("deepseek_v2_chat.jinja"), conversation, true, kBos, kEos),
            kBos + "S\n\nUser: U1\n\nAssistant: A1" + kEos + "User: U2\n\nAssistant:");
}

TEST(JinjaChatTemplate, ParseOnceRenderManyAndExtraVariables) {
  const ChatTemplate t = ChatTemplate::parse(fixture("llama_cpp_deepseek_v3_1.jinja"));
  const nlohmann::ordered_json conversation = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hi"}}});
  EXPECT_EQ(t.render_chat(conversation, true, kBos, kEos), kBos + "<｜User｜>Hi<｜Assistant｜></think>");
  EXPECT_EQ(t.render_chat(conversation, true, kBos, kEos, {{"thinking", true}}),
            kBos + "<｜User｜>Hi<｜Assistant｜><think>");
  EXPECT_EQ(t.render_chat(conversation, false, kBos, kEos), kBos + "<｜User｜>Hi");
}

TEST(JinjaChatTemplate, ToolsAndDocumentsAreNoneLikeTransformers) {
  const ChatTemplate t = ChatTemplate::parse("{{ tools is none }} {{ documents is none }} {{ messages|length }}");
  EXPECT_EQ(t.render_chat(nlohmann::ordered_json::array(), false, "", ""), "True True 0");
}

TEST(JinjaChatTemplate, OrderedJsonKeepsKeyOrder) {
  const ChatTemplate t = ChatTemplate::parse("{{ d|tojson }}");
  nlohmann::ordered_json ordered;
  ordered["d"]["z"] = 1;
  ordered["d"]["a"] = 2;
  EXPECT_EQ(t.render(ordered), R"({"z": 1, "a": 2})");
  EXPECT_EQ(t.render(json(ordered)), R"({"a": 2, "z": 1})");  // nlohmann::json sorts keys
}

}  // namespace
}  // namespace whale
