package com.webank.ai.fate.driver;

import com.webank.ai.fate.core.Banner;

public final class Federation {
    public static void main(String[] args) {
        System.out.println(Banner.banner("federation", 9394));
    }
}
