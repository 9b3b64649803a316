/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder */
typedef int placeholder_unit;
