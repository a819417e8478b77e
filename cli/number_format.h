// How the CLI writes a number for a person. One rule for every table, chosen by magnitude:
//
//   integer cells                                        as integers       1024, -3
//   dollar columns (the name contains "usd")             2 decimals >= 1   12.50, 1234.57
//                                                        4 decimals < 1    0.0042
//                                                        3 significant below 0.0001
//   other doubles with no fraction (below 1e15)          as integers       16, 2048
//   everything else                                      3 significant     1.23, 12.3, 0.0123
//                                                        no decimals >= 100: 123, 45679
//                                                        exponent below 0.001: 4.2e-05
//   NaN and infinities                                   nan, inf, -inf
//
// Machine formats (JSON, CSV) never use this: they carry the full value.
#pragma once

#include <string>
#include <string_view>

#include "proto/breakeven.pb.h"

namespace breakeven::cli {

// Whether a query column holds dollars ("usd_per_mtok", "api_usd_per_hour").
bool IsMoneyColumn(std::string_view column);

std::string FormatNumber(double value, std::string_view column = {});

// A query cell for a table: numbers as FormatNumber, integers as integers, text as is, null "-".
std::string FormatCell(const v1::Cell& cell, std::string_view column = {});

}  // namespace breakeven::cli
