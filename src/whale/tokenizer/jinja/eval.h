// Renders a parsed Template. Scoping follows jinja2: each for-loop iteration and each macro call gets a fresh
// scope (assignments inside do not leak out), `if` blocks share their enclosing scope, macros see the scope they
// were defined in, and namespace() objects are the way to carry state out of a loop.
#pragma once

#include <memory>
#include <string>

#include "whale/tokenizer/jinja/ast.h"

namespace whale::jinja {

// Renders `t` with `context` (a dict of variables). Throws TemplateError with the offset of the failing node.
std::string render(const Template& t, const Value& context);

}  // namespace whale::jinja
