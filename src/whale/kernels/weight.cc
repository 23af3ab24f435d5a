#include "whale/kernels/weight.h"

#include "whale/kernels/quant_format.h"

namespace whale {

int64_t weight_bytes(const Weight2D& w) {
  switch (w.dtype) {
    case DType::F8_E4M3: {
      const int64_t blocks = (w.rows + w.block_rows - 1) / w.block_rows * ((w.cols + w.block_cols - 1) / w.block_cols);
      return w.rows * w.cols + blocks * static_cast<int64_t>(sizeof(float));
    }
    case DType::Q8:
    case DType::Q4: {
      const QuantType t = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
      return quant_padded_rows(w.rows) / kQuantRowGroup * quant_group_bytes(t, quant_padded_cols(w.cols));
    }
    default:
      return w.rows * w.cols * static_cast<int64_t>(dtype_size(w.dtype));
  }
}

}  // namespace whale
