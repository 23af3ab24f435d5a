// Parses Jinja source into a Template (jinja2's grammar and operator precedence, parser.py). Throws TemplateError
// with the byte offset of the offending token.
#pragma once

#include <memory>
#include <string_view>

#include "whale/tokenizer/jinja/ast.h"

namespace whale::jinja {

std::shared_ptr<const Template> parse_template(std::string_view source);

}  // namespace whale::jinja
